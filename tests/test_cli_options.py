"""The CLI's plumbing without a run: which options count as typed, how a failure is worded, which metrics
a summary shows."""

from __future__ import annotations

from hf_finetune import resolve_config, templates
from hf_finetune.cli import _errors
from hf_finetune.cli.train import parse_options, training_parser
from hf_finetune.config import RunConfig
from hf_finetune.metrics import summary_grid, summary_rows


def test_only_typed_options_override_a_config_file(tmp_path):
    config = tmp_path / "cfg.yaml"
    config.write_text("task: sentiment\nlearning_rate: 0.001\nresume: false\nseed: 7\n")
    parser = training_parser(templates.load("sentiment"))
    assert "(default: 0.0001)" in parser.format_help()   # the template's default is still shown
    values = parse_options(parser, ["--config", str(config), "--seed", "3", "--no-fp16"])
    overrides = {k: v for k, v in values.items() if k in RunConfig.field_names()}
    assert overrides == {"seed": 3, "fp16": False}
    _, resolved = resolve_config(None, config=values["config"], **overrides)
    assert (resolved.learning_rate, resolved.resume, resolved.seed, resolved.fp16) == (0.001, False, 3, False)


def test_an_error_is_worded_by_its_most_specific_row(capsys):
    def reported(err: BaseException) -> tuple[int, str]:
        try:
            raise err
        except BaseException as caught:  # noqa: BLE001
            code = _errors.report(caught, debug=False)
        return code, " ".join(capsys.readouterr().err.split())

    assert reported(ConnectionResetError(104, "Connection reset by peer")) == (
        1, "error: A network connection failed: Connection reset by peer.")
    assert reported(PermissionError(13, "Permission denied", "/out")) == (
        1, "error: A file operation failed: Permission denied (/out). Check free disk space and permissions.")
    try:
        raise RuntimeError("safetensors: write failed") from OSError(28, "No space left on device")
    except RuntimeError as err:
        assert _errors.report(err, debug=False) == 1
    assert "Writing failed: No space left on device." in capsys.readouterr().err
    assert reported(ValueError("boom\nmore")) == (
        1, "error: Unexpected error: ValueError: boom This may be a bug in hf-finetune; run again with --debug for "
           "the traceback.")
    assert reported(KeyboardInterrupt())[0] == 130


def test_every_summary_shows_the_same_rows():
    metrics = {"zero_shot_test": {"accuracy": 0.5}, "validation": {"f1": 0.7, "accuracy": 0.8, "runtime": 3.0},
               "test": {"accuracy": 0.75, "samples_per_second": 9.0, "note": "text"}, "train": {"loss": 0.1}}
    assert list(summary_rows(metrics)) == [("test (before fine-tuning)", "accuracy", 0.5),
                                           ("validation (best checkpoint)", "accuracy", 0.8),
                                           ("validation (best checkpoint)", "f1", 0.7), ("test", "accuracy", 0.75)]
    assert summary_grid(metrics) == (["accuracy", "f1"], [("test (before fine-tuning)", ["0.5000", ""]),
                                                          ("validation (best checkpoint)", ["0.8000", "0.7000"]),
                                                          ("test", ["0.7500", ""])])
