"""Accuracy of the distiller's teacher, reported beside the student's."""
from typing import Sequence

from mmpretrain.evaluation import Accuracy

from mmpkkd.registry import METRICS


@METRICS.register_module()
class TeacherAccuracy(Accuracy):
    """:class:`mmpretrain.evaluation.Accuracy` of ``teacher_pred_score``.

    :class:`~mmpkkd.models.PKKDDistiller` puts the student's prediction in
    ``pred_score`` (scored by the usual ``Accuracy``, the main metric) and
    the teacher's in ``teacher_pred_score``; this metric scores the latter
    under the prefix ``teacher/accuracy``.

    Example:
        >>> val_evaluator = [dict(type='Accuracy', topk=(1, )),
        ...                  dict(type='TeacherAccuracy', topk=(1, ))]
        >>> # logs accuracy/top1 (student) and teacher/accuracy/top1
    """

    default_prefix = 'teacher/accuracy'

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'teacher_pred_score' not in sample:
                raise KeyError(
                    'TeacherAccuracy found no teacher_pred_score: it scores '
                    'the teacher of a PKKDDistiller; remove it from the '
                    'evaluator of a plain classifier config.')
            self.results.append({
                'pred_score': sample['teacher_pred_score'].cpu(),
                'gt_label': sample['gt_label'].cpu()
            })
