from .setup_env import merge_common_args

__all__ = ['merge_common_args']
