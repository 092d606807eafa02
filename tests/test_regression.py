"""PHQ-8 regression (``module.task=regression``): the metrics against hand arithmetic, the
decisions at the cut-off, the trivial baselines, the objective's losses and standard units,
a toy model that learns, the checkpoint round trip, the configs that select by task, every
refusal, and a run end to end on the DAIC-WOZ twin (train, eval, predict)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from torchmetrics.regression import ConcordanceCorrCoef

from conftest import QUIET, TINY_MODEL, compose_config
from dynmultidep.data.dataset import PadCollate, VlogDataset
from dynmultidep.data.vlogs import Vlog
from dynmultidep.evaluation.regression import (
    PHQ8_CUTOFF,
    PHQ8_RANGE,
    REGRESSION_METRICS,
    ScoreMetrics,
    baseline_predictions,
    check_scores,
    depressed,
    regression_metrics,
    resampled_score_metrics,
    trivial_baselines,
)
from dynmultidep.tasks.module import SCORE_SCALE_KEY, DepressionClassifier
from dynmultidep.tasks.objectives import RegressionObjective, ScoreScale, concordance

PREDICTED = [2.0, 12.0, 8.0, 15.0, 4.0]
TRUE = [0.0, 10.0, 12.0, 20.0, 5.0]
TOY_MODEL = {"_target_": "dynmultidep.models.baselines.TemporalMean", "audio_dim": 3,
             "video_dim": 2, "d_model": 16, "dropout": 0.0}  # fmt: skip
ADAM = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-2}


def mean(values):
    return sum(values) / len(values)


def hand_metrics(s, y):
    """RMSE, MAE, CCC (population moments) and Pearson's r in plain arithmetic."""
    n = len(s)
    ms, my = mean(s), mean(y)
    cov = sum((a - ms) * (b - my) for a, b in zip(s, y, strict=True)) / n
    vs, vy = sum((a - ms) ** 2 for a in s) / n, sum((b - my) ** 2 for b in y) / n
    return {
        "rmse": math.sqrt(sum((a - b) ** 2 for a, b in zip(s, y, strict=True)) / n),
        "mae": sum(abs(a - b) for a, b in zip(s, y, strict=True)) / n,
        "ccc": 2 * cov / (vs + vy + (ms - my) ** 2),
        "pearson": cov / math.sqrt(vs * vy) if vs * vy > 0 else None,  # a constant: none
    }


# ------------------------------------------------------------------ metrics
def test_score_metrics_agree_with_hand_arithmetic():
    got = regression_metrics(torch.tensor(PREDICTED), torch.tensor(TRUE))
    assert list(got) == list(REGRESSION_METRICS)
    expected = hand_metrics(PREDICTED, TRUE)
    # errors 2, 2, -4, -5, -1: squares sum to 50, absolute values to 14
    assert expected["rmse"] == pytest.approx(math.sqrt(10)) and expected["mae"] == 2.8
    # means 8.2 and 9.4: cov 30.12, variances 23.36 and 45.44, squared gap 1.44
    assert expected["ccc"] == pytest.approx(2 * 30.12 / (23.36 + 45.44 + 1.44))
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-5), name


def test_ccc_takes_population_moments_not_torchmetrics_n_minus_one():
    s, y = torch.tensor(PREDICTED), torch.tensor(TRUE)
    sample = ConcordanceCorrCoef()
    sample.update(s, y)
    # torchmetrics divides the moments by N - 1 but not the squared gap of the means
    n = len(PREDICTED)
    moments = hand_metrics(PREDICTED, TRUE)["ccc"]
    assert float(sample.compute()) != pytest.approx(moments, rel=1e-4)
    cov, vs, vy = 30.12 * n / (n - 1), 23.36 * n / (n - 1), 45.44 * n / (n - 1)
    assert float(sample.compute()) == pytest.approx(2 * cov / (vs + vy + 1.44), rel=1e-5)
    assert regression_metrics(s, y)["ccc"] == pytest.approx(moments, rel=1e-5)


def test_running_metrics_over_batches_equal_the_whole_fold_at_once():
    s, y = torch.tensor(PREDICTED), torch.tensor(TRUE)
    running = ScoreMetrics(sync=False)
    running.update(s[:2], y[:2])
    running.update(s[2:], y[2:])
    whole = regression_metrics(s, y)
    for name, value in running.compute().items():
        assert float(value) == pytest.approx(whole[name], rel=1e-5), name
    running.reset()
    running.update(s[:3], y[:3])
    assert float(running.compute()["mae"]) == pytest.approx((2 + 2 + 4) / 3)


def test_decisions_are_depressed_at_a_score_of_ten_or_more():
    assert PHQ8_CUTOFF == 10 and PHQ8_RANGE == (0, 24)
    assert depressed(torch.tensor([9.999, 10.0, 10.001, 24.0])).tolist() == [False, True, True,
                                                                            True]  # fmt: skip
    got = regression_metrics(torch.tensor(PREDICTED), torch.tensor(TRUE))
    # predicted depressed: 12, 15; truly: 10, 12, 20. TP 2, FP 0, FN 1, TN 2
    assert got["acc"] == pytest.approx(4 / 5) and got["precision"] == 1.0
    assert got["recall"] == pytest.approx(2 / 3) and got["f1"] == pytest.approx(4 / 5)
    assert got["macro_f1"] == pytest.approx((4 / 5 + 4 / 5) / 2)  # F1 of the negatives: 4/5
    assert got["avg4"] == pytest.approx((4 / 5 + 1 + 2 / 3 + 4 / 5) / 4)
    # AUROC ranks by the score, not by the 0/1 decision: the truly depressed vlog scored 8
    # ranks above both non-depressed (2, 4), so the ranking is perfect; the decisions alone
    # would tie it with them
    assert got["auroc"] == 1.0


def test_auroc_is_undefined_for_one_class_and_far_scores_stay_apart():
    y = torch.tensor([1.0, 2.0, 3.0])
    assert regression_metrics(torch.tensor([1.0, 5.0, 2.0]), y)["auroc"] is None
    # scores far past the scale are still told apart (no saturation to a tie)
    s = torch.tensor([40.0, 41.0, 39.0, 42.0])
    got = regression_metrics(s, torch.tensor([12.0, 20.0, 3.0, 24.0]))
    assert got["auroc"] == 1.0


def test_trivial_baselines_by_hand():
    train = torch.tensor([1.0, 3.0, 4.0, 10.0])
    assert baseline_predictions(train) == {"train_mean": 4.5, "train_median": 3.5}
    assert baseline_predictions(torch.tensor([1.0, 3.0, 10.0]))["train_median"] == 3.0
    baselines = trivial_baselines(train, torch.tensor(TRUE))
    assert set(baselines) == {"train_mean", "train_median"}
    for name, constant in (("train_mean", 4.5), ("train_median", 3.5)):
        got = baselines[name]
        assert got["prediction"] == constant
        expected = hand_metrics([constant] * 5, TRUE)
        assert expected["ccc"] == 0.0 and expected["pearson"] is None
        for metric, value in expected.items():
            assert got["metrics"][metric] == (value and pytest.approx(value, rel=1e-5)), metric
        # nobody is called depressed: the accuracy is the share of true scores under 10
        assert got["metrics"]["acc"] == pytest.approx(2 / 5) and got["metrics"]["recall"] == 0
        assert got["metrics"]["auroc"] == 0.5


def test_the_bootstraps_rows_agree_with_the_reported_metrics():
    s, y = torch.tensor(PREDICTED), torch.tensor(TRUE)
    rows = resampled_score_metrics(s[None].expand(3, -1), y[None].expand(3, -1))
    whole = regression_metrics(s, y)
    for name in ("rmse", "mae", "ccc"):
        assert rows[name].shape == (3,)
        torch.testing.assert_close(rows[name], torch.full((3,), whole[name], dtype=torch.double))


def test_scores_outside_the_scale_or_missing_are_named():
    with pytest.raises(ValueError, match=r"^the fold: 1 vlogs have no PHQ-8 score$"):
        check_scores(torch.tensor([1.0, math.nan]), "the fold")
    with pytest.raises(ValueError, match=r"scores must lie in \[0, 24\], got -1 to 30"):
        check_scores(torch.tensor([-1.0, 30.0]), "the fold")


# --------------------------------------------------------------- objective
def vlogs_with_scores(n: int = 8, seed: int = 0) -> list[Vlog]:
    """Vlogs whose audio level follows their score (a cue a toy model can find)."""
    rng = np.random.default_rng(seed)
    scores = np.linspace(0, 24, n)
    out = []
    for i, score in enumerate(scores):
        steps = 5 + i % 3
        audio = (score / 12 + rng.normal(0, 0.1, (steps, 3))).astype(np.float32)
        video = rng.normal(0, 1, (steps, 2)).astype(np.float32)
        out.append(Vlog(str(i), int(score >= 10), "f" if i % 2 else "m", audio, video,
                        float(score)))  # fmt: skip
    return out


def whole_batch(vlogs: list[Vlog]) -> dict:
    return PadCollate(None)([VlogDataset(vlogs)[i] for i in range(len(vlogs))])


def regressor(loss: str = "mse", **model) -> DepressionClassifier:
    torch.manual_seed(0)
    return DepressionClassifier(model={**TOY_MODEL, **model}, optimizer=ADAM, task="regression",
                                regression_loss=loss)  # fmt: skip


def test_the_score_scale_standardises_and_back():
    scale = ScoreScale.of([0.0, 6.0, 12.0, 18.0])
    assert (scale.mean, scale.median, scale.vlogs) == (9.0, 9.0, 4)
    assert scale.std == pytest.approx(math.sqrt((81 + 9 + 9 + 81) / 4))  # population std
    z = scale.standardise(torch.tensor([0.0, 6.0, 12.0, 18.0]))
    assert float(z.mean()) == pytest.approx(0.0, abs=1e-6)
    assert float(z.pow(2).mean()) == pytest.approx(1.0)
    torch.testing.assert_close(scale.scores(z), torch.tensor([0.0, 6.0, 12.0, 18.0]))


def test_reported_scores_are_clipped_to_the_scale_and_the_output_kept():
    objective = RegressionObjective("mse")
    objective.scale = ScoreScale(mean=10.0, std=5.0, median=10.0, vlogs=4)
    outputs = torch.tensor([-3.0, 0.4, 3.0])  # 10 + 5 x output: -5, 12, 25 points
    torch.testing.assert_close(objective.scale.unclipped(outputs), torch.tensor([-5.0, 12.0, 25.0]))
    true = torch.tensor([0.0, 12.0, 24.0])
    batch = {"id": ["a", "b", "c"], "score": true}
    metrics = objective.metrics()
    objective.update(metrics, outputs, batch)
    assert float(objective.compute(metrics, "val")["val/rmse"]) == pytest.approx(0.0, abs=1e-6)
    fields = objective.predicted(outputs, batch, labelled=True)
    torch.testing.assert_close(fields["scores"], torch.tensor([0.0, 12.0, 24.0]))
    torch.testing.assert_close(fields["unclipped_scores"], torch.tensor([-5.0, 12.0, 25.0]))
    # the loss reads the output itself: no flat gradient beyond the scale
    grad = torch.tensor([3.0], requires_grad=True)
    objective.loss(grad, objective.scale.standardise(torch.tensor([24.0])), None).backward()
    assert float(grad.grad) != 0.0


def test_each_loss_by_hand():
    objective = RegressionObjective("mse")
    outputs, targets = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([0.0, -1.0, 0.5])
    assert float(objective.loss(outputs, targets, None)) == pytest.approx((0.25 + 0 + 2.25) / 3)
    rows = torch.tensor([True, False, True])
    assert float(objective.loss(outputs, targets, rows)) == pytest.approx((0.25 + 2.25) / 2)
    huber = RegressionObjective("huber")
    # squared (halved) within delta 1, linear beyond: 0.125, 0, 1.5 - 0.5
    assert float(huber.loss(outputs, targets, None)) == pytest.approx((0.125 + 0 + 1.0) / 3)
    ccc = RegressionObjective("ccc")
    hand = hand_metrics(outputs.tolist(), targets.tolist())["ccc"]
    assert float(ccc.loss(outputs, targets, None)) == pytest.approx(1 - hand, rel=1e-5)
    kept = hand_metrics([0.5, 2.0], [0.0, 0.5])["ccc"]
    assert float(concordance(outputs, targets, rows)) == pytest.approx(kept, rel=1e-5)
    # the experts' losses are per vlog: the squared error for ccc too
    per_path = ccc.path_losses(torch.stack([outputs, outputs], 1), targets)
    torch.testing.assert_close(per_path[:, 1], (outputs - targets) ** 2)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
@pytest.mark.parametrize("loss", ["mse", "huber", "ccc"])
def test_a_toy_model_learns_scores_with_each_loss(loss):
    vlogs = vlogs_with_scores()
    module = regressor(loss)
    module.objective.fit(vlogs, "hand")
    batch = whole_batch(vlogs)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        step_loss = module.training_step(batch, 0)
        optimizer.zero_grad()
        step_loss.backward()
        optimizer.step()
        losses.append(float(step_loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses[::10]
    module.eval()
    predicted = module.predictions(batch, module(batch))
    rmse = regression_metrics(predicted.scores, predicted.true_scores)["rmse"]
    spread = float(torch.tensor([v.score for v in vlogs]).std(correction=0))
    assert rmse < 0.5 * spread  # better than the training mean (whose RMSE is the std)


def test_the_scale_round_trips_through_a_checkpoint(tmp_path):
    from dynmultidep.tasks.checkpoint import classifier_from_checkpoint, read_checkpoint

    vlogs = vlogs_with_scores()
    module = regressor("huber").eval()
    module.objective.fit(vlogs, "hand")
    checkpoint = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                  "epoch": 0}  # fmt: skip
    module.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "r.ckpt")
    loaded = read_checkpoint(tmp_path / "r.ckpt")  # torch.load(weights_only=True)
    assert loaded[SCORE_SCALE_KEY] == {"mean": 12.0, "std": module.objective.scale.std,
                                       "median": 12.0, "vlogs": 8}  # fmt: skip
    rebuilt = classifier_from_checkpoint(loaded, tmp_path / "r.ckpt")
    assert rebuilt.hparams.task == "regression" and rebuilt.hparams.regression_loss == "huber"
    assert rebuilt.objective.scale == module.objective.scale
    batch = whole_batch(vlogs)
    before = module.predictions(batch, module(batch))
    after = rebuilt.predictions(batch, rebuilt(batch))
    torch.testing.assert_close(after.scores, before.scores)
    assert after.baselines == {"train_mean": 12.0, "train_median": 12.0}
    # a regression checkpoint without its scale cannot give scores
    del loaded[SCORE_SCALE_KEY]
    with pytest.raises(ValueError, match="holds no training-fold PHQ-8 score statistics"):
        classifier_from_checkpoint(loaded, tmp_path / "r.ckpt")


# ----------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pos_weight": True}, r"^module.pos_weight weights depressed vlogs in the binary loss; "
                               "it does not apply to module.task=regression$"),
        ({"threshold": "tune"}, r"^module.threshold=tune applies to the binary task's "
                                "probabilities; module.task=regression calls a vlog depressed "
                                "at a predicted PHQ-8 score of 10 or more$"),
        ({"threshold": 0.3}, r"^module.threshold=0.3 applies to the binary task's"),
        ({"regression_loss": "mae"}, r"^module.regression_loss must be one of mse, huber, ccc, "
                                     "got 'mae'$"),
        ({"task": "ordinal"}, r"^module.task must be one of binary, regression, got 'ordinal'$"),
    ],
)  # fmt: skip
def test_binary_only_options_are_refused_in_one_line(options, message):
    kwargs = {"task": "regression", **options}
    with pytest.raises(ValueError, match=message):
        DepressionClassifier(model=TOY_MODEL, optimizer=ADAM, **kwargs)


def test_models_fit_in_closed_form_are_refused():
    functionals = {"_target_": "dynmultidep.models.functionals.Functionals", "audio_dim": 3,
                   "video_dim": 2}  # fmt: skip
    with pytest.raises(ValueError, match=r"^module.task=regression: model Functionals is a "
                       "logistic regression fit in closed form, for the binary task only; "
                       "choose a model trained by gradient"):  # fmt: skip
        DepressionClassifier(model=functionals, optimizer=ADAM, task="regression")
    cfg = compose_config("train", ["module.task=regression", *TINY_MODEL])
    with pytest.raises(ValueError, match=r"DynMultiDep's statistics expert is a logistic "
                       r"regression fit in closed form \(model.stats_fit=closed_form\), for the "
                       "binary task only; set model.stats_fit=gradient$"):  # fmt: skip
        DepressionClassifier(model=cfg.model, optimizer=ADAM, task="regression")
    # with a statistics expert trained by gradient, the default model regresses
    cfg = compose_config("train", ["module.task=regression", "model.stats_fit=gradient",
                                   *TINY_MODEL])  # fmt: skip
    assert DepressionClassifier(model=cfg.model, optimizer=ADAM, task="regression").net


def test_corpora_without_scores_and_vlogs_without_one_are_refused():
    vlogs = vlogs_with_scores(4)
    none = [Vlog(v.id, v.label, v.gender, v.audio, v.video) for v in vlogs]
    objective = RegressionObjective("mse")
    with pytest.raises(ValueError, match=r"^module.task=regression: corpus 'dvlog' has no PHQ-8 "
                       r"scores; regression needs dataset=daic_woz or dataset=edaic \(or their "
                       r"synthetic twins\)$"):  # fmt: skip
        objective.fit(none, "dvlog")
    with pytest.raises(ValueError, match="corpus 'edaic' has no PHQ-8 score for 1 of 4 training"):
        objective.fit([*vlogs[:3], none[3]], "edaic")
    with pytest.raises(ValueError, match="every training vlog has PHQ-8 score 7"):
        objective.fit([Vlog(v.id, v.label, v.gender, v.audio, v.video, 7.0) for v in vlogs], "x")
    objective.fit(vlogs, "daic_woz")
    batch = whole_batch([*vlogs[:2], none[2]])
    with pytest.raises(ValueError, match=r"^module.task=regression: vlogs 2 have no PHQ-8 score"):
        objective.targets(batch)
    with pytest.raises(ValueError, match="no training-fold score statistics"):
        RegressionObjective("mse").targets(whole_batch(vlogs))


def test_training_on_dvlog_stops_with_one_line(synthetic_corpus, tmp_path):
    from conftest import run_script

    root, _ = synthetic_corpus("dvlog", "tiny")
    result = run_script("train", "dataset=dvlog", f"dataset.root={root}", "debug=fast",
                        "module.task=regression", "model=temporal_mean",
                        f"paths.output_dir={tmp_path}", "~logger", *QUIET)  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "error: module.task=regression: corpus 'dvlog' has no PHQ-8 scores; regression needs "
        "dataset=daic_woz or dataset=edaic (or their synthetic twins)"
    )


# ------------------------------------------------------------------ configs
def test_checkpoints_are_selected_by_the_tasks_metric(tmp_path):
    from hydra.utils import instantiate

    binary = compose_config("train", ["callbacks=[default,early_stopping]"])
    assert binary.optimized_metric == "val/macro_f1"
    assert binary.callbacks.model_checkpoint.mode == binary.callbacks.early_stopping.mode == "max"
    assert binary.module.task == "binary" and binary.module.regression_loss == "mse"
    regression = compose_config("train", ["callbacks=[default,early_stopping]",
                                          "module.task=regression"])  # fmt: skip
    assert regression.optimized_metric == "val/rmse"
    callbacks = regression.callbacks
    assert callbacks.model_checkpoint.mode == callbacks.early_stopping.mode == "min"
    checkpoint = instantiate(callbacks.model_checkpoint, dirpath=str(tmp_path))
    assert checkpoint.monitor == "val/rmse" and checkpoint.mode == "min"
    ccc = compose_config("train", ["module.task=regression", "optimized_metric=val/ccc"])
    assert ccc.callbacks.model_checkpoint.mode == "max"
    assert compose_config("train", ["optimized_metric=val/mae"]).callbacks.model_checkpoint.mode \
        == "min"  # fmt: skip
    wrong = compose_config("train", ["module.task=ordinal"])
    with pytest.raises(ValueError, match="module.task must be one of binary, regression, got "
                       "'ordinal'"):  # fmt: skip
        str(wrong.optimized_metric)


def test_the_resolvers_tasks_are_the_objectives():
    from dynmultidep.resolvers import TASK_METRICS
    from dynmultidep.tasks.objectives import TASKS

    assert tuple(TASK_METRICS) == TASKS


# --------------------------------------------------------------- end to end
def twin_overrides(tmp_path, *extra: str) -> list[str]:
    return ["dataset=synthetic_daic_woz", "dataset.synthetic.preset=tiny",
            f"paths.data_dir={tmp_path}/data", "dataset.batch_size=4", "module.task=regression",
            "model.stats_fit=gradient", *TINY_MODEL, *QUIET, *extra]  # fmt: skip


def test_train_eval_and_predict_regress_scores_on_the_daic_woz_twin(tmp_path):
    from dynmultidep.evaluation.predictions import read_run_predictions
    from dynmultidep.tasks.checkpoint import read_checkpoint
    from dynmultidep.tasks.evaluate import evaluate
    from dynmultidep.tasks.predict import predict
    from dynmultidep.tasks.train import train

    run = tmp_path / "run"
    cfg = compose_config("train", twin_overrides(tmp_path, "trainer.max_epochs=2",
                                                 "module.regression_loss=huber",
                                                 f"paths.output_dir={run}"))  # fmt: skip
    returned = train(cfg)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["objective"] == "regression" and metrics["monitor"] == "val/rmse"
    assert returned == metrics["best_score"]
    # the best checkpoint has the lowest validation RMSE of the epochs
    with open(run / "csv" / "metrics.csv", newline="") as handle:
        logged = [float(r["val/rmse"]) for r in csv.DictReader(handle) if r.get("val/rmse")]
    assert len(logged) == 2 and returned == pytest.approx(min(logged))
    assert list(metrics["metrics"]) == list(REGRESSION_METRICS)
    scale = metrics["phq8_scale"]
    checkpoint = read_checkpoint(metrics["checkpoint"])
    assert checkpoint[SCORE_SCALE_KEY] == scale
    assert {b: metrics["baselines"][b]["prediction"] for b in ("train_mean", "train_median")} \
        == {"train_mean": scale["mean"], "train_median": scale["median"]}  # fmt: skip
    rows = read_run_predictions(run)
    assert rows.regression and len(rows.ids) == metrics["vlogs"]
    torch.testing.assert_close(rows.decisions, depressed(rows.scores).long())
    reread = regression_metrics(rows.scores, rows.true_scores)
    for name in ("rmse", "mae", "acc"):
        assert reread[name] == pytest.approx(metrics["metrics"][name], abs=1e-4), name
    assert (run / "test_scores.png").is_file() and not (run / "test_reliability.png").exists()
    # eval.py gives the same scores from the checkpoint alone
    eval_cfg = compose_config("eval", [f"ckpt_path={metrics['checkpoint']}",
                                       f"paths.output_dir={tmp_path}/eval", *QUIET[2:],
                                       "callbacks.rich_progress_bar=null"])  # fmt: skip
    payload = evaluate(eval_cfg)
    assert payload["metrics"] == metrics["metrics"] and payload["baselines"] == metrics["baselines"]
    # predict.py writes predicted scores for unlabelled sessions
    prepared = next((tmp_path / "data" / "prepared").iterdir())
    predict_cfg = compose_config("predict", [f"ckpt_path={metrics['checkpoint']}",
                                             f"input={prepared}", f"output={tmp_path}/p.csv",
                                             f"paths.output_dir={tmp_path}", "timeline=all",
                                             *QUIET[2:]])  # fmt: skip
    predicted = predict(predict_cfg)
    with open(tmp_path / "p.csv", newline="") as handle:
        first = next(csv.DictReader(handle))
    assert list(first)[:4] == ["id", "gender", "predicted_score", "prediction"]
    assert predicted.scores is not None and predicted.probs is None
    timeline = (tmp_path / "timelines" / f"{first['id']}.csv").read_text()
    assert timeline.startswith("step,seconds,audio,video,total,face_found")
    # ... and for the sessions of the release itself, labelled or not, which it prepares
    # with the checkpoint's feature sets: the same scores
    release = [f"ckpt_path={metrics['checkpoint']}", f"input={cfg.dataset.root}",
               f"output={tmp_path}/r.csv", f"paths.output_dir={tmp_path}",
               f"interview.cache_dir={tmp_path}/cache", "interview.workers=1",
               *QUIET[2:]]  # fmt: skip
    whole = predict(compose_config("predict", release))
    assert set(predicted.ids) <= set(whole.ids)
    torch.testing.assert_close(whole.take([whole.ids.index(i) for i in predicted.ids]).scores,
                               predicted.scores)  # fmt: skip
    assert ((whole.scores >= 0) & (whole.scores <= 24)).all()
    # sessions prepared with other sets, or another corpus, are refused in one line
    from dynmultidep.data.interviews.prepare import InterviewOptions, prepare
    from dynmultidep.errors import CheckpointError

    other = prepare(cfg.dataset.root, InterviewOptions("daic_woz", ("formant",), ("aus",)),
                    tmp_path / "other", workers=1)  # fmt: skip
    with pytest.raises(
        CheckpointError,
        match=r"trained on daic_woz prepared with audio sets "
        r"covarep, visual sets aus,gaze,pose, .*other.* was not; give the release",
    ):
        predict(compose_config("predict", [*release, f"input={other}"]))  # fmt: skip
    with pytest.raises(
        CheckpointError,
        match=r"audio sets covarep \(74 columns\) and visual "
        r"sets aus, gaze, pose \(38 columns\), which edaic lacks",
    ):
        predict(compose_config("predict", [*release, "corpus=edaic"]))  # fmt: skip
