"""mmpkkd.experiments.results: a run's result from its scalars.json logs."""
from mmpkkd.experiments import final_metrics, val_scalars


def _log(folder, stamp, lines):
    path = folder / stamp / 'vis_data'
    path.mkdir(parents=True)
    (path / 'scalars.json').write_text(''.join(lines))


def test_run_without_logs_has_no_result(tmp_path):
    assert val_scalars(str(tmp_path / 'not_started')) == {}
    assert final_metrics(str(tmp_path), 1, 'accuracy/top1') is None


def test_work_dir_named_with_glob_characters(tmp_path):
    """A setting's name (the spec's ``name``) is a folder name: brackets
    in it are characters, not a pattern."""
    run = tmp_path / 'lr[0.1]' / 'seed_0'
    _log(run, '20240101_000000', [
        '{"lr": 0.1, "loss": 2.0, "epoch": 1, "iter": 1, "step": 1}\n',
        '{"accuracy/top1": 55.5, "step": 1}\n'])
    (tmp_path / 'lr0' / 'seed_0').mkdir(parents=True)  # what [0.1] matches
    assert final_metrics(str(run), 1, 'accuracy/top1') == dict(
        val=55.5, teacher=None, step=1)
    assert final_metrics(str(tmp_path / 'lr0' / 'seed_0'), 1,
                         'accuracy/top1') is None
