from .adder_optim_wrapper import AdderOptimWrapper, AmpAdderOptimWrapper

__all__ = ['AdderOptimWrapper', 'AmpAdderOptimWrapper']
