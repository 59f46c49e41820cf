"""Mutation check: apply each one-line break of a feature, run the test that must catch it, undo the break.

    python tests/mutation_check.py          # all of them
    python tests/mutation_check.py 3 7      # by index

Works on a temporary copy of the tree (the files git tracks, and new ones it does not ignore), installed
into a throwaway virtual environment that sees this one's packages: the checkout is never edited, so an
interrupted check leaves nothing broken, and everything the tests start (subprocesses, a Job's wheel
built from the installed tree) runs the mutated copy. Prints one JSON line per break ("caught": true
when its test failed).
"""
import json
import os
import shutil
import site
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BREAKS = [   # (what breaks, file, exact text, its replacement, the tests that must then fail)
 ("argmax->argmin in classification metrics", "hf_finetune/kinds/base.py",
  "return suite.compute(np.argmax(logits_of(eval_pred.predictions), axis=-1), eval_pred.label_ids)",
  "return suite.compute(np.argmin(logits_of(eval_pred.predictions), axis=-1), eval_pred.label_ids)",
  "tests/test_learning.py::test_sentiment_beats_the_majority_class"),
 ("accepts_loss_kwargs line removed", "hf_finetune/kinds/base.py",
  "            model.accepts_loss_kwargs = False", "            pass",
  "tests/test_ddp.py"),
 ("generation max_length one token short", "hf_finetune/kinds/summarization.py",
  "generation.max_length = self.max_target_length + 1", "generation.max_length = self.max_target_length",
  "tests/test_summarization.py::test_seq2seq_run_reports_zero_shot_and_after"),
 ("*.bin pushed", "hf_finetune/rundir.py",
  'PUSHED_PATTERNS = ("model-*-of-*.safetensors",)', 'PUSHED_PATTERNS = ("model-*-of-*.safetensors", "*.bin")',
  "tests/test_hub.py::test_push_pull_round_trip tests/test_security.py"),
 ("SIGTERM does not save", "hf_finetune/callbacks.py",
  "            control.should_save = True", "            pass",
  "tests/test_reliability.py::test_sigterm_saves_a_checkpoint_and_exits_non_zero"),
 ("predict softmax over the batch axis", "hf_finetune/kinds/base.py",
  "probabilities = logits.softmax(-1)", "probabilities = logits.softmax(0)",
  "tests/test_predict_evaluate.py::test_predict_text_lines_to_jsonl_and_csv"),
 ("evaluate never recognises the run's own data", "hf_finetune/evaluation.py",
  '    if dataset == saved.get("dataset"):\n        return True', '    if dataset == saved.get("dataset"):\n        return False',
  "tests/test_predict_evaluate.py::test_evaluate_reproduces_the_runs_own_test_metrics"),
 ("padding fraction formula", "hf_finetune/batching.py",
  'round(float(lengths.sum()) / max(padded, 1), 4)', 'round(float(len(lengths)) / max(padded, 1), 4)',
  "tests/test_length_buckets.py::test_buckets_beat_fixed_steps_of_64_on_imdb_like_lengths"),
 ("batch-norm eps 1e-3 -> 1e-5 in conversion", "hf_finetune/embedded.py",
  "batch_norm_eps=1e-3", "batch_norm_eps=1e-5",
  "tests/test_embedded_assets.py::test_efficientnet_lite0_conversion_matches_the_reference_implementation"),
 ("reachable() always true", "hf_finetune/hub.py",
  "    if constants.is_offline_mode():\n        return False", "    return True\n    if constants.is_offline_mode():\n        return False",
  "tests/test_errors.py::test_an_unreachable_hub_is_noticed_without_offline_mode"),
 ("no recompile budget for buckets", "hf_finetune/training.py",
  "torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, limit)",
  "torch._dynamo.config.recompile_limit = 1",
  "tests/test_length_buckets.py::test_torch_compile_on_bucketed_shapes"),
 ("confusion matrix transposed", "hf_finetune/kinds/base.py",
  '"confusion": confusion_matrix(truth, predicted, labels=ids).tolist(),',
  '"confusion": confusion_matrix(predicted, truth, labels=ids).tolist(),',
  "tests/test_benchmark_layout.py::test_card_has_a_confusion_matrix_per_label_scores_and_errors"),
 ("an unfinished run counts as finished", "hf_finetune/rundir.py",
  "        if not run.is_finished:\n", "        if False:\n",
  "tests/test_hub.py::test_only_a_finished_run_is_pushed"),
 ("token masking off", "hf_finetune/tokens.py",
  "    for form in sorted(_known, key=len, reverse=True):\n        if form in text:",
  "    return text\n    for form in sorted(_known, key=len, reverse=True):\n        if form in text:",
  "tests/test_security.py -k token"),
 ("a README figure edited by hand", "README.md",
  "accuracy **0.763**", "accuracy **0.783**",
  "tests/test_readme_figures.py"),
 ("card snippet uses the run's folder name", "hf_finetune/card.py",
  "kind.usage(repo_id or str((location or run.path).resolve()),", "kind.usage(repo_id or (location or run.path).name,",
  "tests/test_benchmark_layout.py::test_card_tables_are_well_formed_and_say_where_the_data_came_from"),
 ("real-token share reported as 1.0", "hf_finetune/batching.py",
  'round(float(lengths.sum()) / max(padded, 1), 4)', '1.0',
  "tests/test_length_buckets.py::test_training_sees_only_bucket_widths"),
 ("multi-label test scored with a threshold not tuned on validation", "hf_finetune/kinds/multi_label_classification.py",
  'self.threshold = float(validation.get("threshold", DEFAULT_THRESHOLD))', "self.threshold = 0.95",
  "tests/test_multi_label_regression.py::test_threshold_is_tuned_on_validation_saved_and_used_by_predict"),
 ("multi-label predict scores with a softmax", "hf_finetune/kinds/multi_label_classification.py",
  "        scores = logits.sigmoid()", "        scores = logits.softmax(-1)",
  "tests/test_multi_label_regression.py::test_threshold_is_tuned_on_validation_saved_and_used_by_predict"),
 ("held-out label sets split at random", "hf_finetune/kinds/multi_label_classification.py",
  "            place(int(i), np.flatnonzero(need == need.max()))", "            place(int(i), np.array([0, 1]))",
  "tests/test_multi_label_regression.py::test_iterative_stratification_gives_each_label_its_share"),
 ("regression metrics on the standardised scale", "hf_finetune/kinds/regression.py",
  "return suite.compute(self.to_units(logits_of(eval_pred.predictions)), self.to_units(eval_pred.label_ids))",
  "return suite.compute(np.ravel(logits_of(eval_pred.predictions)), np.ravel(eval_pred.label_ids))",
  "tests/test_multi_label_regression.py::test_regression_beats_the_mean_predictor"),
 ("regression predict forgets the target's scaling", "hf_finetune/kinds/regression.py",
  'round(float(row[0]) * scaling["std"] + scaling["mean"], 6)', "round(float(row[0]), 6)",
  "tests/test_multi_label_regression.py::test_regression_predictions_come_back_in_the_targets_units"),
 ("the saved model made multi-label (sigmoid scores)", "hf_finetune/training.py",
  "    trainer.save_model(str(run.path))",
  '    trainer.model.config.problem_type = "multi_label_classification"; trainer.save_model(str(run.path))',
  "tests/test_sentiment_cli.py::test_saved_model_loads_in_pipeline_with_real_label_names"),
 ("the token also sent in the Job's env", "hf_finetune/jobs.py",
  "command=job.command, env=job.env,", "command=job.command, env={**job.env, SECRET: token},",
  "tests/test_jobs.py::test_the_token_travels_only_as_the_job_secret"),
 ("the Hub checkpoint is never pulled", "hf_finetune/hub_checkpoints.py",
  '    if f"{FOLDER}/trainer_state.json" not in files or f"{FOLDER}/{RESUME_STATE}" not in files:\n        return None',
  "    if True:\n        return None",
  "tests/test_jobs.py::test_a_timed_out_job_resubmitted_resumes_from_the_hub_and_ends_equal"),
 ("a failed Job exits 0", "hf_finetune/jobs.py",
  "return EXIT_CODES.get(stage, 1)", "return EXIT_CODES.get(stage, 0)",
  "tests/test_jobs.py::test_a_failing_job_exits_non_zero_with_the_tail_of_its_log"),
 ("majority-class baseline picks the rarest label", "hf_finetune/kinds/baselines.py",
  "top = Counter(train_labels).most_common(1)[0][0]", "top = Counter(train_labels).most_common()[-1][0]",
  "tests/test_baselines_and_search.py::test_card_puts_the_majority_class_and_tfidf_beside_the_metrics"),
 ("hp-search trains with the original values, not the best trial's", "hf_finetune/hpsearch.py",
  "return dataclasses.replace(config, **chosen, hp_search=None), record",
  "return dataclasses.replace(config, hp_search=None), record",
  "tests/test_baselines_and_search.py::test_search_trains_the_best_trial_and_records_it"),
 ("no note on a small validation split", "hf_finetune/training.py",
  "    if count < MIN_VALIDATION:", "    if count > MIN_VALIDATION:",
  "tests/test_baselines_and_search.py::test_small_held_out_validation_is_said_in_the_output_and_the_card"),
 ("the shift augmentation is never applied", "hf_finetune/kinds/image_classification.py",
  '        shift = config.image_augmentation == "shift"', "        shift = False",
  "tests/test_image_classification.py::test_shift_augmentation_moves_a_digit_and_keeps_every_stroke"),
 ("a trial trains from another random state than the run", "hf_finetune/training.py",
  "        # dropout masks and other worker seeds and lands elsewhere (0.988 vs 0.938 on digits).\n        set_seed(config.seed)\n",
  "        # dropout masks and other worker seeds and lands elsewhere (0.988 vs 0.938 on digits).\n",
  "tests/test_baselines_and_search.py::test_search_trains_the_best_trial_and_records_it"),
 ("the augmentations are not reseeded when a training starts", "hf_finetune/kinds/image_classification.py",
  "            self.augmentation_rng.seed(config.seed)", "            pass",
  "tests/test_image_classification.py::test_searched_run_with_augmentation_reproduces_its_best_trial"),
 ("the zero-shot evaluation moves the random streams", "hf_finetune/training.py",
  "        with _random_state_kept():", "        with contextlib.nullcontext():",
  "tests/test_summarization.py::test_searched_run_is_its_best_trial_despite_the_zero_shot_step"),
 ("a run that learned nothing is not said to have", "hf_finetune/learning_check.py",
  '        "learned_nothing": any(f["signal"] == "one_output" or f["trivial"] for f in findings),',
  '        "learned_nothing": False,',
  "tests/test_run_signals.py::test_a_run_that_learned_nothing_says_so_in_the_output_the_card_and_metrics"),
 ("the zero-shot step scores the whole test split", "hf_finetune/training.py",
  "    if len(test) <= cap:", "    if True:",
  "tests/test_run_signals.py::test_zero_shot_is_scored_on_a_stated_sample_with_progress"),
 ("no time estimate after the first steps", "hf_finetune/callbacks.py",
  "        elif (done == 1 + estimate.MEASURED_STEPS", "        elif (done == -1",
  "tests/test_run_signals.py::test_a_long_run_says_its_time_and_the_flags_that_shorten_it"),
 ("'the data data set' on the card", "hf_finetune/card.py",
  '    if {"data", "dataset", "datasets"} & set(re.split(r"[\\W_]+", name.lower())):', "    if False:",
  "tests/test_run_signals.py::test_a_regression_card_on_a_folder_named_data_reads_right"),
]


def copy_of_the_tree(folder: Path) -> Path:
    """The tree's files (tracked, and untracked but not ignored) under ``folder``."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    tree = folder / "tree"
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, tree / name)
    return tree


def environment_for(tree: Path, folder: Path) -> Path:
    """A virtual environment whose hf-finetune is the copy (editable), and whose other packages are this
    environment's (a plain path line: this environment's own editable install is not processed there)."""
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    packages = next(venv.glob("lib/python*/site-packages"))
    (packages / "outer.pth").write_text(site.getsitepackages()[0] + "\n")
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e",
                    str(tree)], check=True, env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"))
    return python


def main() -> int:
    only = sys.argv[1:]
    with tempfile.TemporaryDirectory(prefix="hf-finetune-mutations-") as tmp:
        tree = copy_of_the_tree(Path(tmp))
        python = environment_for(tree, Path(tmp))
        bin_dir = python.parent
        env = dict(os.environ, PATH=f"{bin_dir}:{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(bin_dir.parent),
                   RUN_SLOW="1")   # the tests named may be of either tier
        results = []
        for i, (name, path, old, new, tests) in enumerate(BREAKS):
            if only and str(i) not in only:
                continue
            f = tree / path
            text = f.read_text()
            assert text.count(old) == 1, (name, text.count(old))
            f.write_text(text.replace(old, new))
            started = time.time()
            try:
                proc = subprocess.run([str(python), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                       *tests.split()], cwd=tree, env=env, capture_output=True, text=True)
            finally:
                f.write_text(text)
            tail = [line for line in proc.stdout.splitlines()
                    if line.startswith(("FAILED", "ERROR")) or " passed" in line or " failed" in line][-3:]
            results.append({"mutation": name, "file": path, "tests": tests, "rc": proc.returncode,
                            "caught": proc.returncode == 1, "seconds": round(time.time() - started), "tail": tail})
            print(json.dumps(results[-1]), flush=True)
    return 0 if all(r["caught"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
