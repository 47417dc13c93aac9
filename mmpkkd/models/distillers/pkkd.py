"""PKKD: progressive kernel-based knowledge distillation of an adder network."""
from contextlib import nullcontext
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import load_checkpoint
from mmpretrain.structures import DataSample

from mmpkkd.registry import MODELS
from .feature_capture import FeatureCapture, LayerRecord
from .layer_check import check_layer_pairs

LayerSpec = Union[str, Dict[str, str]]
CONNECTOR_MODES = ('student', 'both', 'none')


@MODELS.register_module()
class PKKDDistiller(BaseModel):
    """Co-train a CNN teacher and an ANN student from scratch (PKKD).

    Every iteration both classifiers see the same batch. The teacher is
    updated by cross-entropy only; the student by
    ``L = beta * L_mid + L_blend`` where ``L_blend = alpha * KD(T) + CE``
    (:class:`BlendKDLoss`) and ``L_mid`` (:class:`KernelFeatureLoss`)
    compares, for each pair of distilled layers, the student's layer mapped
    by ``student_kernel`` (Laplace) and a 1x1 conv with the teacher's layer
    mapped by ``teacher_kernel`` (Gaussian). Teacher features and logits
    are targets: no student loss reaches the teacher's parameters. Layer
    inputs/outputs are captured by forward hooks that exist only during the
    training forward.

    Args:
        teacher (dict): Config of the CNN classifier (any mmpretrain
            ``ImageClassifier``).
        student (dict): Config of the ANN classifier.
        distill_layers (list[str | dict]): Layers to distil, by module name
            inside the classifiers: ``'backbone.layer1.2.conv2'`` (same name
            in both) or ``dict(student=..., teacher=...)``. Empty: logits
            only.
        student_kernel (dict): Kernel of the student side. Defaults to
            ``dict(type='LaplaceKernel')``.
        teacher_kernel (dict): Kernel of the teacher side. Defaults to
            ``dict(type='GaussianKernel')``.
        connector (str): Where the learnable 1x1 conv sits: ``'student'``
            (default; maps student features into the teacher's kernel space),
            ``'both'`` (one on each side; the pair can shrink both features
            towards zero, so watch ``loss_mid``), or ``'none'`` (channels
            must match).
        loss_mid (dict): ``L_mid`` config; its ``loss_weight`` is ``beta``.
        loss_blend (dict): ``L_blend`` config (``alpha``, ``temperature``).
        teacher_ckpt (str, optional): Checkpoint of a trained teacher (a
            plain classifier checkpoint), loaded in ``init_weights``.
        teacher_trainable (bool): Train the teacher with CE alongside the
            student (progressive, default). False freezes it (with
            ``teacher_ckpt``: distillation from a fixed pre-trained teacher).
        data_preprocessor (dict, optional): Shared by both networks.
        init_cfg (dict, optional): Initialisation config.

    Example:
        >>> model = MODELS.build(dict(
        ...     type='PKKDDistiller', teacher=cnn_cfg, student=ann_cfg,
        ...     distill_layers=['backbone.layer3.2.conv2']))
        >>> losses = model(inputs, data_samples, mode='loss')
        >>> sorted(losses)
        ['student.loss_ce', 'student.loss_kd', 'student.loss_mid',
         'teacher.loss_ce']
    """

    def __init__(self,
                 teacher: dict,
                 student: dict,
                 distill_layers: Sequence[LayerSpec] = (),
                 student_kernel: dict = dict(type='LaplaceKernel'),
                 teacher_kernel: dict = dict(type='GaussianKernel'),
                 connector: str = 'student',
                 loss_mid: dict = dict(type='KernelFeatureLoss'),
                 loss_blend: dict = dict(type='BlendKDLoss'),
                 teacher_ckpt: Optional[str] = None,
                 teacher_trainable: bool = True,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        data_preprocessor = dict(data_preprocessor or {})
        data_preprocessor.setdefault('type', 'ClsDataPreprocessor')
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if connector not in CONNECTOR_MODES:
            raise ValueError(f'connector must be one of {CONNECTOR_MODES}, '
                             f'got {connector!r}.')
        if not teacher_trainable and teacher_ckpt is None:
            raise ValueError(
                'teacher_trainable=False freezes a randomly initialised '
                'teacher; set teacher_ckpt to a trained CNN checkpoint.')
        self.teacher = MODELS.build(teacher)
        self.student = MODELS.build(student)
        self.student_kernel = MODELS.build(student_kernel)
        self.teacher_kernel = MODELS.build(teacher_kernel)
        self.loss_mid = MODELS.build(loss_mid)
        self.loss_blend = MODELS.build(loss_blend)
        self.teacher_ckpt = teacher_ckpt
        self.teacher_trainable = teacher_trainable
        self.connector = connector

        self.layer_pairs: List[Tuple[str, str]] = check_layer_pairs(
            distill_layers, self.student, self.teacher, self.student_kernel,
            self.teacher_kernel, connector)
        self.student_capture = FeatureCapture(
            self.student, [s for s, _ in self.layer_pairs])
        self.teacher_capture = FeatureCapture(
            self.teacher, [t for _, t in self.layer_pairs])
        self.student_connectors = nn.ModuleList()
        self.teacher_connectors = nn.ModuleList()
        for s_name, t_name in self.layer_pairs:
            s_ch = self.student_capture.modules[s_name].out_channels
            t_ch = self.teacher_capture.modules[t_name].out_channels
            if connector in ('student', 'both'):
                self.student_connectors.append(nn.Conv2d(s_ch, t_ch, 1))
            if connector == 'both':
                self.teacher_connectors.append(nn.Conv2d(t_ch, t_ch, 1))
        if not teacher_trainable:
            self.teacher.requires_grad_(False)

    # ------------------------------------------------------------ set-up
    def init_weights(self) -> None:
        super().init_weights()
        if self.teacher_ckpt is not None:
            load_checkpoint(
                self.teacher, self.teacher_ckpt, map_location='cpu',
                strict=True)

    def train(self, mode: bool = True) -> 'PKKDDistiller':
        super().train(mode)
        if not self.teacher_trainable:
            self.teacher.eval()  # a fixed teacher keeps its BN statistics
        return self

    # ----------------------------------------------------------- forward
    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.student(inputs, mode='tensor')
        raise RuntimeError(f'Invalid mode {mode!r}: use loss, predict or '
                           'tensor.')

    def loss(self, inputs: torch.Tensor,
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """Teacher CE, student ``L_blend`` terms and ``L_mid``, by name."""
        labels = torch.cat([ds.gt_label for ds in data_samples])
        grad_ctx = nullcontext() if self.teacher_trainable else torch.no_grad()
        with self.teacher_capture.recording() as t_records, grad_ctx:
            t_logits = self.teacher(inputs, mode='tensor')
        with self.student_capture.recording() as s_records:
            s_logits = self.student(inputs, mode='tensor')

        losses = {}
        if self.teacher_trainable:
            losses['teacher.loss_ce'] = nn.functional.cross_entropy(
                t_logits.float(), labels)
        blend = self.loss_blend(s_logits, t_logits.detach(), labels)
        losses.update({f'student.{k}': v for k, v in blend.items()})
        if self.layer_pairs:
            s_feats, t_feats = self.mapped_features(s_records, t_records)
            losses['student.loss_mid'] = self.loss_mid(s_feats, t_feats)
        return losses

    def mapped_features(
        self, s_records: Dict[str, LayerRecord],
        t_records: Dict[str, LayerRecord]
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Kernel-mapped (and connected) features of every layer pair."""
        s_feats, t_feats = [], []
        for i, (s_name, t_name) in enumerate(self.layer_pairs):
            s_feat = self.student_kernel(s_records[s_name])
            with torch.no_grad():  # the teacher's layer is a fixed target
                t_feat = self.teacher_kernel(t_records[t_name])
            if self.student_connectors:
                s_feat = self.student_connectors[i](s_feat)
            if self.teacher_connectors:
                t_feat = self.teacher_connectors[i](t_feat)
            if s_feat.shape != t_feat.shape:
                raise ValueError(
                    f'Distilled layers {s_name!r} (student) and {t_name!r} '
                    f'(teacher) give features of shapes {tuple(s_feat.shape)}'
                    f' and {tuple(t_feat.shape)}; pick layers with the same '
                    'spatial size.')
            s_feats.append(s_feat)
            t_feats.append(t_feat)
        return s_feats, t_feats

    @torch.no_grad()
    def predict(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None
                ) -> List[DataSample]:
        """Student predictions, with the teacher's as ``teacher_pred_*``."""
        samples = self.student.predict(inputs, data_samples)
        t_scores = self.teacher(inputs, mode='tensor').softmax(dim=1)
        for sample, score in zip(samples, t_scores):
            sample.set_field(score, 'teacher_pred_score')
            sample.set_field(score.argmax(keepdim=True), 'teacher_pred_label')
        return samples
