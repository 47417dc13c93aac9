"""One sitting of a sweep: plan it, read what earlier sittings left, train
what is missing, and rewrite the tables.

The sweep folder ``OUT`` holds one work dir per run
(``OUT/<setting>/seed_<seed>``, with its record), ``sweep.json`` (the
plan), ``results.csv``, ``results.md``, ``runs.csv`` and
``sessions.jsonl`` (one line per sitting that trained).
"""
import datetime
import json
import os.path as osp
import time
from typing import Any, Dict, List, Optional, Tuple

from mmpkkd.utils import USAGE_EXIT, UserError
from .plan import Run, plan_runs
from .records import (LOG_FILE, RUN_FILE, check_record, new_record,
                      read_record, resume_args, write_json)
from .results import final_metrics, summarize
from .spec import format_options, format_value
from .supervisor import INTERRUPTED_EXIT, lock_out_dir, pid_runs, train_runs
from .tables import write_tables


def _read_records(runs: List[Run], config: str, metric: str
                  ) -> Tuple[Dict[Tuple[str, int], dict], List[Run]]:
    """Every run's record (a new one where there is none) and the runs
    still to train. A run whose logs reach the final step is done, even
    if the sweep that trained it died before recording it.

    Raises:
        UserError: A work dir holds a run of other options or config, or
            is being trained by a live process.
    """
    records: Dict[Tuple[str, int], dict] = {}
    todo: List[Run] = []
    for run in runs:
        record = read_record(run.work_dir)
        if record is not None:
            check_record(run, record)
        else:
            record = new_record(run, config)
        last = record['attempts'][-1] if record['attempts'] else {}
        if record['status'] == 'running' and pid_runs(
                last.get('pid'), run.work_dir):
            raise UserError(
                f'{run.work_dir} is being trained by process {last["pid"]}'
                ' (left by an earlier sweep); stop it first.', USAGE_EXIT)
        if record['status'] != 'done':
            result = final_metrics(run.work_dir, run.final_step, metric)
            if result is not None:  # finished, but the sweep died first
                record['status'], record['result'] = 'done', result
                write_json(osp.join(run.work_dir, RUN_FILE), record)
        records[(run.setting.name, run.seed)] = record
        if record['status'] != 'done':
            todo.append(run)
    return records, todo


def run_sweep(config: str, spec: Dict[str, Any], out_dir: str, *,
              train_tool: str, env: Dict[str, str], jobs: int = 1,
              threads: Optional[int] = None, max_runs: Optional[int] = None,
              dry_run: bool = False) -> int:
    """Plan, train what is missing, write the tables.

    Finished runs are read, not redone; an interrupted run resumes from its
    last checkpoint; a failed run is tried again.

    Args:
        config (str): The training config.
        spec (dict): From :func:`~mmpkkd.experiments.read_spec`.
        out_dir (str): The sweep's folder.
        train_tool (str): The path of ``tools/train.py``.
        env (dict): The environment of every training.
        jobs (int): Runs trained at once.
        threads (int, optional): The thread count that ``env`` gives each
            run, for the records and messages.
        max_runs (int, optional): Start at most this many runs.
        dry_run (bool): List the runs and their state, write the tables
            from the finished runs, train nothing.

    Returns:
        int: The exit status: 0 when every run started finished, 1 when
        some failed, 130 when interrupted.

    Raises:
        UserError: The spec does not fit the config, another sweep runs in
            ``out_dir``, or its work dirs hold other runs.
    """
    settings, runs, unit = plan_runs(config, spec, out_dir)
    lock = lock_out_dir(out_dir)  # noqa: F841  (held while we run)
    write_json(osp.join(out_dir, 'sweep.json'), dict(
        config=config, seeds=spec['seeds'], metric=spec['metric'],
        options={k: format_value(v) for k, v in spec['options'].items()},
        settings=[dict(name=s.name, options={
            k: format_value(v) for k, v in s.options.items()})
                  for s in settings]))
    header = dict(config=config, metric=spec['metric'],
                  seeds=spec['seeds'], unit=unit,
                  options=format_options(spec['options']))
    records, todo = _read_records(runs, config, spec['metric'])

    def tabulate() -> None:
        write_tables(out_dir, summarize(settings, records), runs, records,
                     header)

    print(f'sweep: {len(settings)} setting(s) x {len(spec["seeds"])} '
          f'seed(s) = {len(runs)} runs in {out_dir}: '
          f'{len(runs) - len(todo)} finished, {len(todo)} to train')
    if dry_run:
        for run in runs:
            state = records[(run.setting.name, run.seed)]['status']
            if state != 'done':
                how = ' '.join(resume_args(run)) or 'a new run'
                state = f'to train ({how})' if state == 'new' else \
                    f'{state}, to train ({how})'
            print(f'  {run.label:<50} {state}')
    if max_runs is not None:
        todo = todo[:max_runs]
    if dry_run or not todo:
        tabulate()
        return 0

    if jobs > 1 and threads is None:
        print('sweep: note: --jobs > 1 without --threads: every run uses '
              "the machine's default thread count, and OpenMP threads of "
              'parallel runs compete for the cores')
    started = time.time()
    code, ended = train_runs(todo, records, config, train_tool, env,
                             jobs=jobs, threads=threads,
                             metric=spec['metric'], unit=unit,
                             on_run_end=tabulate)
    tabulate()
    session = dict(started=datetime.datetime.fromtimestamp(
        started).isoformat(timespec='seconds'),
                   elapsed_s=round(time.time() - started, 1),
                   runs_ended=ended, jobs=jobs, threads=threads,
                   interrupted=code == INTERRUPTED_EXIT)
    with open(osp.join(out_dir, 'sessions.jsonl'), 'a') as f:
        f.write(json.dumps(session) + '\n')
    print(f'sweep: {ended} run(s) ended in '
          f'{session["elapsed_s"] / 60:.1f} min (--jobs {jobs}, '
          f'--threads {threads or "default"})')

    failed = [r for r in runs
              if records[(r.setting.name, r.seed)]['status'] == 'failed']
    if failed:
        print('sweep: failed runs (the next sweep tries them again):\n' +
              '\n'.join(f'  {r.label}: {r.work_dir}/{LOG_FILE}'
                        for r in failed))
        code = code or 1
    print(f'sweep: tables in {osp.join(out_dir, "results.md")} and '
          'results.csv')
    return code
