from .cli import (add_common_args, close_distributed, load_config,
                        merge_common_args)

__all__ = [
    'add_common_args', 'close_distributed', 'load_config', 'merge_common_args'
]
