"""Everything about checkpoint files, in one place.

* :mod:`.loading`: reading a file with the weights-only unpickler
  (:func:`safe_torch_load`, :class:`CheckpointError`);
* :mod:`.schemes`: every name MMEngine accepts (path, URL,
  ``torchvision://`` ...) routed to it (:func:`load_checkpoint_file`,
  :func:`register_checkpoint_loaders`);
* :mod:`.saving` and :mod:`.hook`: writing checkpoints atomically
  (:class:`AtomicCheckpointHook`);
* :mod:`.strict`: loading for evaluation, where every weight must fit
  (:func:`load_strictly`);
* :mod:`.student`: the student of a PKKD checkpoint
  (:func:`extract_student`, :data:`STUDENT_PREFIX`).

Importing :mod:`mmpkkd` (through :mod:`mmpkkd.engine`) calls
:func:`register_checkpoint_loaders`, so that MMEngine's runner, its
``load_checkpoint`` and ``init_cfg`` Pretrained all load through the
weights-only loader.
"""
from .hook import AtomicCheckpointHook
from .loading import ALLOWED_GLOBALS, CheckpointError, safe_torch_load
from .saving import AtomicLocalBackend, atomic_write
from .schemes import (SCHEME_LOADERS, has_scheme, hub_cache_dir,
                      load_checkpoint_file, read_checkpoint,
                      register_checkpoint_loaders)
from .strict import checkpoint_state_dict, load_strictly, trained_as
from .student import STUDENT_PREFIX, TEACHER_PREFIX, extract_student

__all__ = [
    'AtomicCheckpointHook', 'ALLOWED_GLOBALS', 'CheckpointError',
    'safe_torch_load', 'AtomicLocalBackend', 'atomic_write',
    'SCHEME_LOADERS', 'has_scheme', 'hub_cache_dir', 'load_checkpoint_file',
    'read_checkpoint', 'register_checkpoint_loaders',
    'checkpoint_state_dict', 'load_strictly', 'trained_as', 'STUDENT_PREFIX',
    'TEACHER_PREFIX', 'extract_student'
]
