"""What a PKKD teacher's logits give its student, per teacher head.

For a PKKD checkpoint, on training batches and in training mode (what the
KD term sees), this measures:

Training images are read without augmentation.

* the teacher's logit scale (per-image standard deviation over classes);
* the entropy of its softened distribution ``p_t^T`` (as a fraction of
  ``log(num_classes)``; 1 = uniform) and its top probability, per ``T``;
* how far ``p_t^T`` is from uniform (total-variation distance);
* the batch dependence of ``p_t^T``: the same images are placed in
  ``--shuffles`` different random batches; the mean total-variation distance
  of each image's ``p_t^T`` from its mean over batches (BatchNorm in train
  mode normalises over the batch, so a target can move with its batch-mates);
* the size of the KD gradient on the student's logits relative to the head
  loss's: ``alpha * T^2 * KL`` has gradient ``alpha * T * (p_s^T - p_t^T)``,
  the cross-entropy ``p_s - y``; their mean L2 norms and ratio;
* the teacher's top-1 on the evaluation split in eval mode (running BN
  statistics) and in train mode (batch statistics of 150-image batches).

Example::

    python tools/analysis_tools/teacher_head_stats.py \\
        configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py \\
        work_dirs/pkkd/epoch_15.pth --temperatures 1 4 \\
        --cfg-options model.teacher.head.type=BNLinearClsHead
"""
import argparse
import copy
import json
import math
import os.path as osp
from typing import Dict, List

import torch
import torch.nn.functional as F
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope

from mmpkkd.apis import get_model
from mmpkkd.registry import DATASETS
from mmpkkd.utils import (USAGE_EXIT, UserError, add_debug_arg,
                          check_output_path, make_parent, read_config,
                          run_tool)
from mmpkkd.utils.config import missing_file_message


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--temperatures', type=float, nargs='+',
                        default=[1.0, 4.0])
    parser.add_argument('--batches', type=int, default=8,
                        help='training batches to measure on')
    parser.add_argument('--shuffles', type=int, default=6,
                        help='random batches each probe image is placed in')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', help='also write the figures here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    add_debug_arg(parser)
    return parser.parse_args(argv)


def batches(dataset, indices: List[int], size: int):
    for start in range(0, len(indices), size):
        yield pseudo_collate([dataset[i] for i in indices[start:start + size]])


@torch.no_grad()
def measure(cfg: Config, checkpoint: str, temperatures: List[float],
            n_batches: int, n_shuffles: int, seed: int) -> Dict[str, float]:
    model = get_model(cfg, checkpoint)
    alpha = cfg.model.loss_blend.get('alpha', 1.0)
    # training images without augmentation: a probe image is then the same
    # in every batch, and only its batch-mates change
    train_set = DATASETS.build(
        dict(cfg.train_dataloader.dataset, pipeline=cfg.test_pipeline))
    batch_size = cfg.train_dataloader.batch_size
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(train_set), generator=g).tolist()
    order = order[:n_batches * batch_size]

    def logits(net, data, train: bool):
        net = copy.deepcopy(net)  # train-mode BN must not touch the model
        net.train(train)
        return net(data['inputs'], mode='tensor').float()

    out: Dict[str, float] = {}
    t_logits, s_logits, labels = [], [], []
    for data in batches(train_set, order, batch_size):
        data = model.data_preprocessor(data, False)
        t_logits.append(logits(model.teacher, data, True))
        s_logits.append(logits(model.student, data, True))
        labels.append(torch.cat([s.gt_label for s in data['data_samples']]))
    t, s, y = torch.cat(t_logits), torch.cat(s_logits), torch.cat(labels)
    num_classes = t.shape[1]
    out['teacher_logit_std'] = t.std(1).mean().item()
    out['student_logit_std'] = s.std(1).mean().item()
    ce_grad = (s.softmax(1) - F.one_hot(y, num_classes)).norm(dim=1).mean()
    out['ce_grad_norm'] = ce_grad.item()
    for temp in temperatures:
        p_t = (t / temp).softmax(1)
        entropy = -(p_t * p_t.clamp_min(1e-12).log()).sum(1)
        out[f'T{temp:g}_teacher_entropy'] = (
            entropy.mean().item() / math.log(num_classes))
        out[f'T{temp:g}_teacher_top_prob'] = p_t.max(1).values.mean().item()
        # how far the targets are from uniform: the information they carry
        out[f'T{temp:g}_teacher_tv_from_uniform'] = (
            0.5 * (p_t - 1.0 / num_classes).abs().sum(1).mean().item())
        kd_grad = alpha * temp * ((s / temp).softmax(1) - p_t)
        out[f'T{temp:g}_kd_grad_norm'] = kd_grad.norm(dim=1).mean().item()
        out[f'T{temp:g}_kd_over_ce_grad'] = (
            out[f'T{temp:g}_kd_grad_norm'] / out['ce_grad_norm'])

    # batch dependence of the soft targets of `batch_size // 2` probe images
    probes = order[:batch_size // 2]
    others = order[batch_size // 2:]
    per_t = {temp: [] for temp in temperatures}
    for _ in range(n_shuffles):
        pick = torch.randperm(len(others), generator=g)[:batch_size // 2]
        data = model.data_preprocessor(
            pseudo_collate([train_set[i] for i in probes] +
                           [train_set[others[j]] for j in pick.tolist()]),
            False)
        probe_logits = logits(model.teacher, data, True)[:len(probes)]
        for temp in temperatures:
            per_t[temp].append((probe_logits / temp).softmax(1))
    for temp in temperatures:
        p = torch.stack(per_t[temp])  # (shuffles, probes, classes)
        tv = 0.5 * (p - p.mean(0, keepdim=True)).abs().sum(2).mean()
        out[f'T{temp:g}_teacher_batch_tv'] = tv.item()

    eval_set = DATASETS.build(cfg.val_dataloader.dataset)
    hits = {'eval': 0, 'train': 0}
    for data in batches(eval_set, list(range(len(eval_set))), 150):
        data = model.data_preprocessor(data, False)
        gt = torch.cat([s.gt_label for s in data['data_samples']])
        for mode in hits:
            pred = logits(model.teacher, data, mode == 'train').argmax(1)
            hits[mode] += (pred == gt).sum().item()
    for mode, n in hits.items():
        out[f'teacher_top1_{mode}_mode'] = 100.0 * n / len(eval_set)
    return out


def report(args: argparse.Namespace) -> Dict[str, float]:
    """Check the inputs, measure, print and optionally save the figures."""
    for path, what in ((args.config, 'config'),
                       (args.checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise UserError(missing_file_message(path, what), USAGE_EXIT)
    if args.json:
        check_output_path(args.json, [args.config, args.checkpoint],
                          option='--json')
    cfg = read_config(args.config, args.cfg_options)
    with DefaultScope.overwrite_default_scope('mmpkkd'):
        stats = measure(cfg, args.checkpoint, args.temperatures, args.batches,
                        args.shuffles, args.seed)
    for key, value in stats.items():
        print(f'{key:32s} {value:.4f}')
    if args.json:
        with open(make_parent(args.json), 'w') as f:
            json.dump(stats, f, indent=1)
    return stats


def main(argv=None) -> Dict[str, float]:
    """Run the tool; errors propagate (for use from Python)."""
    return report(parse_args(argv))


if __name__ == '__main__':
    run_tool(report, parse_args(), 'teacher_head_stats.py')
