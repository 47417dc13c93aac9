"""PKKD: progressive kernel-based knowledge distillation of adder networks."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import load_checkpoint
from mmpretrain.structures import DataSample

from mmpkkd.registry import MODELS
from .feature_capture import FeatureCapture, LayerRecord
from .grad_share import conv_weights, gradient_shares
from .kernels import build_layer_kernels, standardize_maps
from .layer_check import LayerSpec, check_layer_pairs, resolve_layer_pairs
from .underflow import UnderflowMonitor

CONNECTOR_SIDES = ('student', 'teacher', 'both', 'none')
MAP_NORMS = ('none', 'channel')
HEAD = 'head'  # the classifier's head, captured for its logits
#: training iterations between two underflow checks of the kernel maps
UNDERFLOW_CHECK_INTERVAL = 100


def _named(side: str, head_losses: Dict[str, torch.Tensor]) -> dict:
    """``{'loss': x}`` of a classifier -> ``{'<side>.loss_cls': x}``."""
    return {
        f'{side}.{"loss_cls" if key == "loss" else key}': value
        for key, value in head_losses.items()
    }


def _logits(records: Dict[str, LayerRecord], side: str) -> torch.Tensor:
    logits = records[HEAD].output
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise TypeError(
            f'The {side} head must return (N, num_classes) logits for the '
            f'KD term, got {type(logits).__name__}. Use a ClsHead-style '
            'head (LinearClsHead, BNLinearClsHead, ...).')
    return logits


@MODELS.register_module()
class PKKDDistiller(BaseModel):
    """Co-train a CNN teacher and an ANN student from scratch (PKKD).

    Every iteration both classifiers see the same batch (after the shared
    ``data_preprocessor`` and its batch augments). Each network's supervised
    term is its own head's configured loss, computed by the head itself as
    in a plain mmpretrain classifier (hard labels, or the soft ``gt_score``
    that Mixup/CutMix write), and logged as ``teacher.loss_cls`` and
    ``student.loss_cls``. On top of that the student gets the soft KD term
    of ``L_blend`` (:class:`BlendKDLoss`, ``student.loss_kd``) and ``beta *
    L_mid`` (:class:`KernelFeatureLoss`, ``student.loss_mid``), which
    compares, for each pair of distilled layers, the student's layer mapped
    by ``student_kernel`` (Laplace) with the teacher's layer mapped by
    ``teacher_kernel`` (Gaussian), after the connectors. Teacher features
    and logits are targets: no student loss reaches the teacher's
    parameters. Layer inputs/outputs and logits are captured by forward
    hooks that exist only during the training forward.

    Args:
        teacher (dict): Config of the CNN classifier (any mmpretrain
            ``ImageClassifier`` with a head); its ``head`` (type and
            ``loss``) is the teacher's classifier choice.
        student (dict): Config of the ANN classifier.
        distill_layers (list[str | dict]): Layers to distil, by module name
            inside the classifiers: ``'backbone.layer1.2.conv2'`` (same name
            in both) or ``dict(student=..., teacher=...)``. Empty: logits
            only.
        student_kernel (dict): Kernel of the student side. Its ``sigma``
            may be ``'auto'``, a float, or a list with one value per
            distilled layer. Defaults to ``dict(type='LaplaceKernel')``.
        teacher_kernel (dict): Kernel of the teacher side, the same way.
            Defaults to ``dict(type='GaussianKernel')``.
        connector (str): Which side's kernel features pass through a
            learnable connector before ``L_mid`` (the paper's Eqs. 11-12
            leave it open): ``'student'`` (default; student channels ->
            teacher channels), ``'teacher'`` (teacher channels -> student
            channels), ``'both'`` (student -> teacher channels, and teacher
            -> teacher channels; the pair can shrink both features towards
            zero, so watch ``loss_mid``) or ``'none'`` (channels must match).
        connector_cfg (dict): The connector module, built per layer and
            side with ``in_channels`` and ``out_channels`` filled in.
            Defaults to ``dict(type='ConvConnector')`` (a 1x1 conv).
        map_norm (str): What is done to both sides' kernel maps before the
            connectors: ``'none'`` (default) or ``'channel'``, which
            standardises each channel over the batch and positions (zero
            mean, unit variance; statistics not detached). Kernel maps sit
            near one value (``exp(-1)`` with ``sigma='auto'``), so without
            it a connector's bias can close most of ``L_mid`` by itself;
            with it, ``L_mid`` compares the maps' patterns.
        loss_mid (dict): ``L_mid`` config; its ``loss_weight`` is ``beta``.
        loss_blend (dict): Config of the soft KD term of ``L_blend``
            (``alpha``, ``temperature``); the hard term is the student
            head's loss.
        teacher_ckpt (str, optional): Checkpoint of a trained teacher (a
            plain classifier checkpoint), loaded in ``init_weights``.
        teacher_trainable (bool): Train the teacher by its head loss
            alongside the student (progressive, default). False freezes it
            (with ``teacher_ckpt``: distillation from a fixed teacher).
        train_cfg (dict, optional): As in mmpretrain's ``ImageClassifier``:
            ``dict(augments=[dict(type='Mixup', alpha=0.2)])`` becomes the
            shared data preprocessor's ``batch_augments``.
        data_preprocessor (dict, optional): Shared by both networks.
        init_cfg (dict, optional): Initialisation config.

    Example:
        >>> model = MODELS.build(dict(
        ...     type='PKKDDistiller', teacher=cnn_cfg, student=ann_cfg,
        ...     distill_layers=['backbone.layer3.2.conv2']))
        >>> losses = model(inputs, data_samples, mode='loss')
        >>> sorted(losses)
        ['student.loss_cls', 'student.loss_kd', 'student.loss_mid',
         'teacher.loss_cls']
    """

    def __init__(self,
                 teacher: dict,
                 student: dict,
                 distill_layers: Sequence[LayerSpec] = (),
                 student_kernel: dict = dict(type='LaplaceKernel'),
                 teacher_kernel: dict = dict(type='GaussianKernel'),
                 connector: str = 'student',
                 connector_cfg: dict = dict(type='ConvConnector'),
                 map_norm: str = 'none',
                 loss_mid: dict = dict(type='KernelFeatureLoss'),
                 loss_blend: dict = dict(type='BlendKDLoss'),
                 teacher_ckpt: Optional[str] = None,
                 teacher_trainable: bool = True,
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        data_preprocessor = dict(data_preprocessor or {})
        data_preprocessor.setdefault('type', 'ClsDataPreprocessor')
        data_preprocessor.setdefault('batch_augments', train_cfg)
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if connector not in CONNECTOR_SIDES:
            raise ValueError(f'connector must be one of {CONNECTOR_SIDES}, '
                             f'got {connector!r}.')
        if map_norm not in MAP_NORMS:
            raise ValueError(f'map_norm must be one of {MAP_NORMS}, got '
                             f'{map_norm!r}.')
        if not teacher_trainable and teacher_ckpt is None:
            raise ValueError(
                'teacher_trainable=False freezes a randomly initialised '
                'teacher; set teacher_ckpt to a trained CNN checkpoint.')
        self.teacher = self._build_classifier(teacher, 'teacher')
        self.student = self._build_classifier(student, 'student')
        self.loss_mid = MODELS.build(loss_mid)
        self.loss_blend = MODELS.build(loss_blend)
        self.teacher_ckpt = teacher_ckpt
        self.teacher_trainable = teacher_trainable
        self.connector = connector
        self.map_norm = map_norm
        self._grad_shares_due = False

        self.layer_pairs: List[Tuple[str, str]] = resolve_layer_pairs(
            distill_layers, self.student, self.teacher)
        s_names = [s for s, _ in self.layer_pairs]
        t_names = [t for _, t in self.layer_pairs]
        self.student_kernels = build_layer_kernels(student_kernel, s_names,
                                                   'student_kernel')
        self.teacher_kernels = build_layer_kernels(teacher_kernel, t_names,
                                                   'teacher_kernel')
        check_layer_pairs(self.layer_pairs, self.student, self.teacher,
                          self.student_kernels, self.teacher_kernels,
                          connector)
        self.student_capture = FeatureCapture(self.student, s_names + [HEAD])
        self.teacher_capture = FeatureCapture(self.teacher, t_names + [HEAD])
        self.student_connectors = nn.ModuleList()
        self.teacher_connectors = nn.ModuleList()
        self._build_connectors(connector_cfg)
        self.underflow = UnderflowMonitor()
        self._mid_calls = 0  # the underflow check runs every N-th call
        if not teacher_trainable:
            self.teacher.requires_grad_(False)

    # ------------------------------------------------------------ set-up
    @staticmethod
    def _build_classifier(cfg: dict, side: str) -> nn.Module:
        model = MODELS.build(cfg)
        if not getattr(model, 'with_head', False):
            raise ValueError(f'The {side} must be a classifier with a head '
                             '(its loss and logits are used), e.g. an '
                             'ImageClassifier with head=dict(...).')
        augments = getattr(model.data_preprocessor, 'batch_augments', None)
        if augments is not None:
            raise ValueError(
                f'{side}.train_cfg.augments (or {side}.data_preprocessor.'
                'batch_augments) would be ignored: the distiller\'s data '
                'preprocessor feeds both networks. Set '
                'model.train_cfg=dict(augments=[...]) instead.')
        return model

    def _build_connectors(self, connector_cfg: dict) -> None:
        student_modules = self.student_capture.modules
        teacher_modules = self.teacher_capture.modules
        for s_name, t_name in self.layer_pairs:
            s_ch = student_modules[s_name].out_channels
            t_ch = teacher_modules[t_name].out_channels
            if self.connector in ('student', 'both'):
                self.student_connectors.append(
                    MODELS.build(
                        dict(connector_cfg, in_channels=s_ch,
                             out_channels=t_ch)))
            if self.connector in ('teacher', 'both'):
                out_ch = s_ch if self.connector == 'teacher' else t_ch
                self.teacher_connectors.append(
                    MODELS.build(
                        dict(connector_cfg, in_channels=t_ch,
                             out_channels=out_ch)))

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
            if self.training and self.teacher_trainable:
                # BN recalibration (PreciseBNHook) forwards the model in
                # train mode with mode='tensor': run the co-trained teacher
                # too, so that its BN statistics are recomputed as well
                with torch.no_grad():
                    self.teacher(inputs, mode='tensor')
            return self.student(inputs, mode='tensor')
        raise RuntimeError(f'Invalid mode {mode!r}: use loss, predict or '
                           'tensor.')

    def loss(self, inputs: torch.Tensor,
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """Head losses of both networks, the KD term and ``L_mid``."""
        losses = {}
        with self.teacher_capture.recording() as t_records:
            if self.teacher_trainable:
                losses.update(
                    _named('teacher',
                           self.teacher(inputs, data_samples, mode='loss')))
            else:
                with torch.no_grad():
                    self.teacher(inputs, mode='tensor')
        with self.student_capture.recording() as s_records:
            losses.update(
                _named('student',
                       self.student(inputs, data_samples, mode='loss')))
        blend = self.loss_blend(
            _logits(s_records, 'student'),
            _logits(t_records, 'teacher').detach())
        losses.update({f'student.{k}': v for k, v in blend.items()})
        if self.layer_pairs:
            s_feats, t_feats = self.mapped_features(s_records, t_records)
            losses['student.loss_mid'] = self.loss_mid(s_feats, t_feats)
        if self._grad_shares_due and torch.is_grad_enabled():
            self._grad_shares_due = False
            losses.update(self.student_grad_shares(losses))
        return losses

    # ------------------------------------------------- gradient balance
    def request_grad_shares(self) -> None:
        """Measure :meth:`student_grad_shares` in the next training loss.

        The shares are returned with the losses (``student.grad_share.cls``,
        ``.kd``, ``.mid``; keys without ``loss``, so they are logged but not
        summed into the loss). :class:`~mmpkkd.engine.GradShareHook` calls
        this at the log interval. Measuring costs one extra backward pass
        of the student per loss term, on that iteration only.
        """
        self._grad_shares_due = True

    def student_grad_shares(
            self, losses: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Each student loss term's share of the gradient on the student's
        conv/adder weights (:func:`gradient_shares`).

        Args:
            losses (dict[str, Tensor]): The output of :meth:`loss`, whose
                graph is still alive.

        Returns:
            dict[str, Tensor]: ``{'student.grad_share.<term>': share}``.
        """
        terms = {
            key: value
            for key, value in losses.items()
            if key.startswith('student.') and 'loss' in key
            and value.requires_grad
        }
        params = [param for _, param in conv_weights(self.student)]
        return gradient_shares(terms, params, prefix='student.')

    def mapped_features(
        self, s_records: Dict[str, LayerRecord],
        t_records: Dict[str, LayerRecord]
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Kernel-mapped (and connected) features of every layer pair."""
        s_names = [s for s, _ in self.layer_pairs]
        t_names = [t for _, t in self.layer_pairs]
        s_maps = [
            kernel(s_records[name])
            for kernel, name in zip(self.student_kernels, s_names)
        ]
        with torch.no_grad():  # the teacher's layer is a fixed target
            t_maps = [
                kernel(t_records[name])
                for kernel, name in zip(self.teacher_kernels, t_names)
            ]
        # the check syncs with the device, so it runs on the first call and
        # then every UNDERFLOW_CHECK_INTERVAL calls, not every iteration
        if self._mid_calls % UNDERFLOW_CHECK_INTERVAL == 0:
            self.underflow.check('student', s_names, s_maps,
                                 self.student_kernels)
            self.underflow.check('teacher', t_names, t_maps,
                                 self.teacher_kernels)
        self._mid_calls += 1
        if self.map_norm == 'channel':
            s_maps = [standardize_maps(m) for m in s_maps]
            t_maps = [standardize_maps(m) for m in t_maps]
        s_feats, t_feats = [], []
        for i, (s_name, t_name) in enumerate(self.layer_pairs):
            s_feat, t_feat = s_maps[i], t_maps[i]
            if self.student_connectors:
                s_feat = self.student_connectors[i](s_feat)
            if self.teacher_connectors:
                t_feat = self.teacher_connectors[i](t_feat)
            if s_feat.shape != t_feat.shape:
                raise ValueError(
                    f'Distilled layers {s_name!r} (student) and {t_name!r} '
                    f'(teacher) give features of shapes {tuple(s_feat.shape)}'
                    f' and {tuple(t_feat.shape)} after the connectors; pick '
                    'layers with the same spatial size (and a connector '
                    'that maps channels).')
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
