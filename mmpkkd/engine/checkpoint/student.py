"""The ANN student of a PKKD checkpoint, as a plain classifier checkpoint.

Used by ``tools/model_converters/extract_student.py``, by
:func:`mmpkkd.apis.get_model` (``student=True``) and to recognise a PKKD
checkpoint in a mismatch message.
"""
from collections import OrderedDict

#: key prefixes of the two networks' weights in a PKKD checkpoint (the
#: distiller's ``student`` and ``teacher`` attributes)
STUDENT_PREFIX = 'student.'
TEACHER_PREFIX = 'teacher.'


def extract_student(checkpoint: dict) -> dict:
    """Return ``{'state_dict': ..., 'meta': ...}`` of the student only.

    The keys lose their ``student.`` prefix, so the result loads into the
    ANN config's ``ImageClassifier``.

    Example:
        >>> ckpt = {'state_dict': {'student.head.fc.weight': w,
        ...                        'teacher.head.fc.weight': w}}
        >>> list(extract_student(ckpt)['state_dict'])
        ['head.fc.weight']

    Raises:
        KeyError: The checkpoint has no ``student.*`` weights (it is not a
            PKKD checkpoint).
    """
    state = checkpoint.get('state_dict', checkpoint)
    student = OrderedDict((k[len(STUDENT_PREFIX):], v) for k, v in state.items()
                          if k.startswith(STUDENT_PREFIX))
    if not student:
        prefixes = sorted({k.split('.')[0] for k in state})
        raise KeyError(
            'No student.* weights found; this is not a PKKD checkpoint (top '
            f'level keys: {prefixes}). A plain classifier checkpoint can be '
            'used with tools/test.py directly.')
    meta = dict(checkpoint.get('meta', {}))
    meta['extracted_from'] = 'PKKDDistiller.student'
    return {'state_dict': student, 'meta': meta}
