"""Training a sweep's runs as child processes of ``tools/train.py``: N at
a time, each recorded in its work dir while it runs, all stopped (to resume
next time) when the sweep is interrupted or dies.

Nothing here plans or tabulates: :func:`train_runs` calls back after every
run that ends.
"""
import os
import os.path as osp
import signal
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, TextIO, Tuple

from mmpkkd.utils import USAGE_EXIT, UserError
from .plan import Run
from .records import LOG_FILE, RUN_FILE, now, resume_args, write_json
from .results import final_metrics

#: How often a running run's elapsed time is saved (seconds).
HEARTBEAT_S = 30.0
#: The exit status of an interrupted sweep (as after Ctrl-C in a shell).
INTERRUPTED_EXIT = 130


class Interrupted(Exception):
    """SIGTERM (or SIGHUP) to the sweep: stop the runs, keep the records."""


def _raise_interrupted(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def lock_out_dir(out_dir: str) -> TextIO:
    """An exclusive lock on the sweep folder, held until the returned
    file is closed or the process ends.

    Raises:
        UserError: Another sweep process holds it.
    """
    import fcntl  # POSIX only: imported where it is needed
    os.makedirs(out_dir, exist_ok=True)
    handle = open(osp.join(out_dir, '.sweep.lock'), 'a+')
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        handle.seek(0)
        raise UserError(
            f'another sweep is running in {out_dir} (pid '
            f'{handle.read().strip() or "?"}); wait for it or stop it '
            'first.', USAGE_EXIT) from err
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def pid_runs(pid: Optional[int], work_dir: str) -> bool:
    """Whether process ``pid`` is alive and trains into ``work_dir``."""
    if not pid:
        return False
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            cmdline = f.read().decode(errors='replace')
    except OSError:
        return False
    return osp.abspath(work_dir) in cmdline.split('\0')


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the sweep dies (Linux),
    so that a killed sweep leaves no training behind."""
    try:
        import ctypes
        libc = ctypes.CDLL('libc.so.6', use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def log_tail(work_dir: str, lines: int = 15) -> str:
    """The last ``lines`` lines of the run's training output."""
    try:
        with open(osp.join(work_dir, LOG_FILE)) as f:
            return ''.join(f.readlines()[-lines:])
    except OSError:
        return ''


class Child:
    """A running ``tools/train.py`` process of one run and its record.

    Starting it appends an attempt to the record and saves it; the
    training's output is appended to :data:`LOG_FILE` in the run's work
    dir.

    Args:
        run (Run): The run.
        record (dict): Its record (updated in place).
        config (str): The training config.
        train_tool (str): The path of ``tools/train.py``.
        env (dict): The child's environment.
        threads (int, optional): Its thread count, for the record.
        jobs (int): Runs trained at once, for the record.
    """

    def __init__(self, run: Run, record: dict, config: str, train_tool: str,
                 env: Dict[str, str], threads: Optional[int],
                 jobs: int) -> None:
        self.run, self.record = run, record
        extra = resume_args(run)
        options = [f'{k}={v}' for k, v in run.options.items()]
        cmd = [sys.executable, train_tool, config, '--work-dir',
               osp.abspath(run.work_dir), *extra, '--cfg-options', *options]
        os.makedirs(run.work_dir, exist_ok=True)
        self.log = open(osp.join(run.work_dir, LOG_FILE), 'a')
        self.log.write(f'\n===== {now()} sweep: {" ".join(cmd)}\n')
        self.log.flush()
        self.start = time.time()
        self.proc = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env,
            preexec_fn=_die_with_parent
            if sys.platform.startswith('linux') else None)
        self.attempt = dict(started=now(), elapsed_s=0.0, returncode=None,
                            pid=self.proc.pid, args=extra, threads=threads,
                            jobs=jobs)
        record['attempts'].append(self.attempt)
        record['status'] = 'running'
        self.save()
        self.saved_at = time.time()

    @property
    def how(self) -> str:
        """``new``, ``resuming from <checkpoint>`` or ``restarting``."""
        args = self.attempt['args']
        if not args:
            return 'new'
        if args[0] == '--resume':
            return f'resuming from {osp.basename(args[1])}'
        return 'restarting'

    def save(self) -> None:
        """Save the record with the attempt's elapsed time."""
        self.attempt['elapsed_s'] = round(time.time() - self.start, 1)
        write_json(osp.join(self.run.work_dir, RUN_FILE), self.record)

    def heartbeat(self) -> None:
        """Save the record every :data:`HEARTBEAT_S` seconds."""
        if time.time() - self.saved_at >= HEARTBEAT_S:
            self.save()
            self.saved_at = time.time()

    def finish(self, returncode: int, metric: str) -> str:
        """Record the end of the attempt; return the run's status."""
        self.log.close()
        self.attempt['returncode'] = returncode
        result = final_metrics(self.run.work_dir, self.run.final_step,
                               metric) if returncode == 0 else None
        if result is not None:
            self.record['status'], self.record['result'] = 'done', result
        else:
            self.record['status'] = 'failed'
        self.save()
        return self.record['status']

    def stop(self) -> None:
        """Ask the training to stop (it resumes next time)."""
        if self.proc.poll() is None:
            self.proc.terminate()


def _report_end(child: Child, status: str, returncode: int, metric: str,
                unit: str, finished: int, total: int) -> None:
    minutes = child.attempt['elapsed_s'] / 60
    if status == 'done':
        result = child.record['result']
        teacher = (f', teacher {result["teacher"]:.2f}'
                   if result['teacher'] is not None else '')
        print(f'[{now()}] done  {child.run.label}: '
              f'{metric} {result["val"]:.2f}{teacher} '
              f'({minutes:.1f} min) [{finished}/{total}]', flush=True)
    elif returncode == 0:
        print(f'[{now()}] FAILED {child.run.label}: training '
              f'ended without {metric!r} after its last '
              f'{unit} ({child.run.final_step}) in '
              'its logs; is --metric the validation metric\'s '
              'name?', flush=True)
    else:
        print(f'[{now()}] FAILED {child.run.label} (exit '
              f'{returncode}, {minutes:.1f} min); end of '
              f'{LOG_FILE}:\n{log_tail(child.run.work_dir)}', flush=True)


def train_runs(todo: List[Run], records: Dict[Tuple[str, int], dict],
               config: str, train_tool: str, env: Dict[str, str], *,
               jobs: int, threads: Optional[int], metric: str, unit: str,
               on_run_end: Callable[[], None]) -> Tuple[int, int]:
    """Train ``todo`` in order, ``jobs`` at a time.

    SIGTERM, SIGHUP and Ctrl-C stop the running trainings (their records
    say ``interrupted``; they resume next time); a sweep killed outright
    takes its trainings with it (Linux).

    Args:
        todo (list[Run]): The runs to train.
        records (dict): ``{(setting name, seed): record}`` of every run;
            those of ``todo`` are updated and saved as they train.
        config (str): The training config.
        train_tool (str): The path of ``tools/train.py``.
        env (dict): The environment of every training.
        jobs (int): Runs trained at once.
        threads (int, optional): The thread count of each run, for the
            records.
        metric (str): The validation metric that marks a run done.
        unit (str): ``'epoch'`` or ``'iteration'``, for messages.
        on_run_end (callable): Called after every run that ends.

    Returns:
        tuple: The exit status (0, or :data:`INTERRUPTED_EXIT`) and the
        number of runs that ended.
    """
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupted)
    finished, total, code = 0, len(todo), 0
    queue: List[Run] = list(todo)
    running: List[Child] = []
    try:
        while queue or running:
            while queue and len(running) < jobs:
                run = queue.pop(0)
                child = Child(run, records[(run.setting.name, run.seed)],
                              config, train_tool, env, threads, jobs)
                running.append(child)
                print(f'[{now()}] start {run.label} ({child.how}): '
                      f'{run.work_dir}', flush=True)
            time.sleep(0.5)
            for child in list(running):
                returncode = child.proc.poll()
                if returncode is None:
                    child.heartbeat()
                    continue
                running.remove(child)
                status = child.finish(returncode, metric)
                finished += 1
                _report_end(child, status, returncode, metric, unit,
                            finished, total)
                on_run_end()
    except (KeyboardInterrupt, Interrupted) as err:
        print(f'sweep: interrupted ({err or "Ctrl-C"}); stopping '
              f'{len(running)} run(s), which resume next time', flush=True)
        for child in running:
            child.stop()
        deadline = time.time() + 60
        for child in running:
            try:
                child.proc.wait(max(1.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
            child.log.close()
            child.attempt['returncode'] = child.proc.returncode
            child.record['status'] = 'interrupted'
            child.save()
        code = INTERRUPTED_EXIT
    finally:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
    return code, finished
