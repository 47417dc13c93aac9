"""Extract the ANN student of a PKKD checkpoint as a plain classifier.

The output holds only the student's weights (no teacher, no connectors),
under the key names of a plain ``ImageClassifier``, so it loads into the ANN
config (e.g. ``configs/ann/resnet20_digits.py``) for ``tools/test.py`` or as
``load_from`` for fine-tuning.

Example:
    python tools/model_converters/extract_student.py \\
        work_dirs/pkkd/epoch_15.pth work_dirs/pkkd/student.pth
    python tools/test.py configs/ann/resnet20_digits.py \\
        work_dirs/pkkd/student.pth
"""
import argparse
import os
import os.path as osp

import torch

from mmpkkd.engine import safe_torch_load
from mmpkkd.models.distillers import extract_student


def main() -> None:
    parser = argparse.ArgumentParser(
        description='Save the ANN student of a PKKD checkpoint.')
    parser.add_argument('checkpoint', help='PKKD checkpoint (epoch_*.pth)')
    parser.add_argument('out', help='output file for the student')
    args = parser.parse_args()
    student = extract_student(safe_torch_load(args.checkpoint, 'cpu'))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    torch.save(student, args.out)
    print(f'Saved {len(student["state_dict"])} student tensors to '
          f'{args.out}')


if __name__ == '__main__':
    main()
