from .setup_env import close_distributed, merge_common_args

__all__ = ['close_distributed', 'merge_common_args']
