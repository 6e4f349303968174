#include "gradlens/pipeline/label_errors.h"
#include <torch/types.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

#include "gradlens/analysis/label_noise.h"
#include "gradlens/analysis/misclassification.h"
#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/strings.h"
#include "gradlens/core/timer.h"
#include "gradlens/distributed/context.h"
#include "gradlens/report/document.h"
#include "gradlens/report/gnuplot.h"
#include "gradlens/report/image_grid.h"
#include "gradlens/report/table.h"

namespace gradlens::pipeline {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string>& dynamics_score_names() {
  static const std::vector<std::string> n = {"el2n", "aum", "forgetting", "low_confidence", "variability"};
  return n;
}
const std::vector<std::string>& checkpoint_score_names() {
  static const std::vector<std::string> n = {"self_influence", "grand", "self_confidence", "normalized_margin",
                                             "neighbor_disagreement"};
  return n;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

const std::vector<std::string>& label_error_score_names() {
  static const std::vector<std::string> n = {"self_influence", "grand",       "el2n",
                                             "aum",            "forgetting",  "low_confidence",
                                             "variability",    "self_confidence", "normalized_margin",
                                             "neighbor_disagreement"};
  return n;
}

const torch::Tensor& LabelErrorsResult::score(const std::string& name) const {
  for (const auto& [n, t] : scores)
    if (n == name) return t;
  GRADLENS_CHECK(false, "no score named '", name, "' was computed");
  return scores.front().second;
}

LabelErrorsResult run_label_errors(const LabelErrorsConfig& cfg, const RunContext& ctx) {
  for (const auto& s : cfg.scores)
    GRADLENS_CHECK_OPTION(contains(label_error_score_names(), s), "--scores: unknown score '", s, "'; use any of ",
                          core::join(label_error_score_names(), ", "));
  GRADLENS_CHECK_OPTION(cfg.neighbors >= 1, "--neighbors must be >= 1, got ", cfg.neighbors);
  GRADLENS_CHECK_OPTION(cfg.show >= 0, "--show must be >= 0, got ", cfg.show);
  const core::Stopwatch t_all;
  // Which scores the record allows, and which are asked for.
  auto record = read_record(cfg.input);
  const bool have_dyn = record.dynamics.epochs() > 0, have_ckpt = !record.checkpoints.empty();
  GRADLENS_CHECK_OPTION(have_dyn || have_ckpt, "--run: ", cfg.input.run, " has neither training dynamics nor epoch "
                        "checkpoints; train with --record-dynamics and/or --save-every-epoch");
  std::vector<std::string> wanted;
  for (const auto& s : label_error_score_names()) {
    const bool dyn = contains(dynamics_score_names(), s);
    const bool ok = dyn ? have_dyn : have_ckpt;
    if (cfg.scores.empty()) {
      if (ok) wanted.push_back(s);
    } else if (contains(cfg.scores, s)) {
      GRADLENS_CHECK_OPTION(ok, "--scores ", s, " needs ", dyn ? "training dynamics" : "epoch checkpoints",
                            ", and the run at --run ", cfg.input.run, " was trained without ",
                            dyn ? "--record-dynamics" : "--save-every-epoch");
      wanted.push_back(s);
    }
  }
  const bool need_ckpt = std::any_of(wanted.begin(), wanted.end(),
                                     [](const std::string& s) { return contains(checkpoint_score_names(), s); });
  distributed::RankSetup ranks = distributed::join_ranks(ctx.device);
  distributed::Communicator& comm = ranks.comm;
  const InfluenceConfig& input = cfg.input;
  RunContext rank_ctx = ctx;
  rank_ctx.device = ranks.device;
  auto in = load_influence_inputs(input, rank_ctx, std::move(record), need_ckpt, comm);
  LabelErrorsResult r;
  r.rank = comm.rank();
  r.world_size = comm.world_size();
  r.record = in.record;
  r.class_names = in.splits.train.class_names;
  r.images = in.splits.train.images;
  r.original = in.original_labels;
  r.store_reused = in.store_reused;
  r.warnings = in.warnings;
  r.seconds.emplace_back("load", t_all.seconds());
  const auto& labels = r.record.labels;
  const int64_t k = r.record.classes;

  const core::Stopwatch t_scores;
  const auto& dyn = r.record.dynamics;
  {
    const int64_t epochs = std::max<int64_t>(dyn.epochs(), static_cast<int64_t>(r.record.checkpoints.size()));
    r.el2n_epoch = cfg.el2n_epoch > 0 ? cfg.el2n_epoch : std::min<int64_t>(2, std::max<int64_t>(1, epochs));
  }
  auto checkpoint_of_epoch = [&](int64_t epoch) -> const influence::GradientFactors& {
    for (size_t t = 0; t < r.record.checkpoints.size(); ++t)
      if (r.record.checkpoints[t].epoch == epoch) return in.train[t];
    GRADLENS_CHECK_OPTION(false, "--el2n-epoch ", epoch, ": the run at --run has no checkpoint of that epoch");
    return in.train.front();
  };
  analysis::LabelErrorScores final_scores;
  if (need_ckpt) {
    const auto& last = in.train.back();
    const auto onehot = torch::zeros({labels.size(0), k}, torch::kFloat32).scatter_(1, labels.unsqueeze(1), 1.0);
    auto probs = (last.delta + onehot).to(torch::kFloat64).clamp_min(0.0);
    probs = probs / probs.sum(1, true);
    r.predictions = probs.argmax(1);
    const bool neighbours = contains(wanted, "neighbor_disagreement");
    final_scores = analysis::label_error_scores(probs, labels, neighbours ? last.features : torch::Tensor(), cfg.neighbors);
  }
  for (const auto& s : wanted) {
    torch::Tensor v;
    if (s == "self_influence") v = influence::self_influence(in.train, in.step_sizes);
    else if (s == "grand") v = influence::gradient_norm(checkpoint_of_epoch(r.el2n_epoch));
    else if (s == "el2n") v = analysis::el2n_score(dyn.el2n, r.el2n_epoch);
    else if (s == "aum") v = analysis::aum_score(dyn.margin);
    else if (s == "forgetting") v = analysis::forgetting_score(dyn.correct);
    else if (s == "low_confidence") v = analysis::low_confidence_score(dyn.p_label);
    else if (s == "variability") v = analysis::variability_score(dyn.p_label);
    else v = final_scores.get(s);
    r.scores.emplace_back(s, v.to(torch::kFloat64).contiguous());
  }
  r.seconds.emplace_back("scores", t_scores.seconds());

  r.show_score = cfg.show_score;
  if (r.show_score.empty())
    r.show_score = contains(wanted, "self_influence") ? "self_influence"
                   : contains(wanted, "aum")          ? "aum"
                                                      : wanted.front();
  GRADLENS_CHECK_OPTION(contains(wanted, r.show_score), "--show-score ", r.show_score, " is not one of the scores "
                        "computed (", core::join(wanted, ", "), ")");

  // AUM's threshold samples carry a made-up label: they are not ranked.
  r.ranked = r.record.threshold.defined() ? r.record.threshold.eq(0).nonzero().flatten()
                                          : torch::arange(r.record.images, torch::kInt64);
  if (r.record.threshold.defined() && contains(wanted, "aum")) {
    const auto& aum = r.score("aum");
    r.aum_threshold = analysis::aum_threshold(aum, r.record.threshold, 99.0);
    r.aum_flagged = aum.ge(-r.aum_threshold).logical_and(r.record.threshold.eq(0));
    if (r.record.flipped.defined()) {
      const auto f = r.record.flipped.to(torch::kBool).logical_and(r.record.threshold.eq(0));
      const double hits = r.aum_flagged.logical_and(f).sum().item<double>();
      r.aum_flag_precision = hits / std::max(1.0, r.aum_flagged.sum().item<double>());
      r.aum_flag_recall = hits / std::max(1.0, f.sum().item<double>());
    }
  }
  const auto ranked_errors =
      r.record.flipped.defined() ? r.record.flipped.to(torch::kBool).index_select(0, r.ranked) : torch::Tensor();
  if (ranked_errors.defined() && ranked_errors.sum().item<int64_t>() > 0) {
    const auto& is_error = ranked_errors;
    const int64_t flipped = is_error.sum().item<int64_t>();
    std::vector<torch::Tensor> curves;
    for (const auto& [name, all] : r.scores) {
      const auto v = all.index_select(0, r.ranked);
      NoiseRankingQuality q;
      q.score = name;
      q.auroc = analysis::auroc(v, is_error);
      q.found_at_10 = analysis::found_at_fraction(v, is_error, 0.10);
      q.found_at_20 = analysis::found_at_fraction(v, is_error, 0.20);
      q.precision_at_flipped = analysis::precision_at_k(v, is_error, flipped);
      r.quality.push_back(q);
      curves.push_back(analysis::found_curve(v, is_error, 100));
    }
    r.curves = torch::stack(curves);
    std::stable_sort(r.quality.begin(), r.quality.end(), [](const NoiseRankingQuality& a, const NoiseRankingQuality& b) {
      return a.found_at_10 > b.found_at_10;
    });
  }
  r.seconds.emplace_back("total", t_all.seconds());
  return r;
}

void write_label_errors(const LabelErrorsResult& r, const LabelErrorsConfig& cfg, const fs::path& out) {
  const auto staged = stage_output(out, cfg.overwrite);
  const auto& dir = staged->path();
  const int64_t n = r.ranked.size(0);
  const bool flips = r.record.flipped.defined();
  const bool flagged = r.aum_flagged.defined();
  const auto& names = r.class_names;
  auto class_name = [&](int64_t c) { return class_name_of(names, c); };
  // Positions in the training set, ranked by the shown score.
  const auto order = r.ranked.index_select(0, analysis::ranking_order(r.score(r.show_score).index_select(0, r.ranked)));

  // scores.csv: every training image, in the order of the shown score.
  {
    report::Table t;
    t.header = {"rank", "index", "label", "label_name"};
    if (flips) t.header.insert(t.header.end(), {"original_label", "flipped"});
    if (r.predictions.defined()) t.header.insert(t.header.end(), {"predicted", "predicted_name"});
    if (flagged) t.header.push_back("aum_flagged");
    for (const auto& [name, v] : r.scores) t.header.push_back(name);
    const auto oa = order.accessor<int64_t, 1>();
    const auto la = r.record.labels.accessor<int64_t, 1>();
    const auto original = r.original.contiguous();
    const auto flipped = flips ? r.record.flipped.to(torch::kInt64).contiguous() : torch::Tensor();
    const auto predicted = r.predictions.defined() ? r.predictions.contiguous() : torch::Tensor();
    std::vector<torch::Tensor> values;
    for (const auto& [name, v] : r.scores) values.push_back(v.to(torch::kFloat64).contiguous());
    t.rows.reserve(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const int64_t j = oa[i];
      std::vector<std::string> row = {std::to_string(i + 1), std::to_string(j), std::to_string(la[j]),
                                      class_name(la[j])};
      if (flips) {
        row.push_back(std::to_string(original.data_ptr<int64_t>()[j]));
        row.push_back(std::to_string(flipped.data_ptr<int64_t>()[j]));
      }
      if (predicted.defined()) {
        const int64_t p = predicted.data_ptr<int64_t>()[j];
        row.push_back(std::to_string(p));
        row.push_back(class_name(p));
      }
      if (flagged) row.push_back(r.aum_flagged[j].item<bool>() ? "1" : "0");
      for (const auto& v : values) row.push_back(fmt::format("{:.9g}", v.data_ptr<double>()[j]));
      t.rows.push_back(std::move(row));
    }
    core::write_text_atomically(dir / "scores.csv", report::to_csv(t));
  }

  report::Document doc("Training labels that look wrong");
  doc.paragraph(fmt::format("Training run: {} ({} training images of {} classes{}). Scores: {}. Every score is "
                            "larger = more suspicious; scores.csv lists every training image ranked by {}.",
                            r.record.dir.filename().string(), r.record.images, r.record.classes,
                            flips ? fmt::format(", {} labels flipped with --noisy-labels {}",
                                                r.record.flipped.sum().item<int64_t>(), r.record.noise_fraction)
                                  : std::string(),
                            [&] {
                              std::vector<std::string> s;
                              for (const auto& [name, v] : r.scores) s.push_back(name);
                              return core::join(s, ", ");
                            }(),
                            r.show_score));
  if (flagged)
    doc.paragraph(fmt::format(
        "AUM threshold samples: {} training images were given the extra class '{}' (not ranked); the 99th "
        "percentile of their AUM is {:.4f}, and {} training images have an AUM at or below it (flagged as "
        "mislabelled, column aum_flagged){}.",
        r.record.threshold.sum().item<int64_t>(), analysis::kThresholdClassName, r.aum_threshold,
        r.aum_flagged.sum().item<int64_t>(),
        flips ? fmt::format(": {:.1f}% of them were flipped, and they hold {:.1f}% of the flipped labels",
                            100 * r.aum_flag_precision, 100 * r.aum_flag_recall)
              : std::string()));
  nlohmann::json quality = nlohmann::json::array();
  if (!r.quality.empty()) {
    report::Table t;
    t.header = {"score", "found in top 10%", "found in top 20%", "AUROC", "precision@flipped"};
    for (const auto& q : r.quality) {
      t.rows.push_back({q.score, report::format_number(q.found_at_10), report::format_number(q.found_at_20),
                        report::format_number(q.auroc), report::format_number(q.precision_at_flipped)});
      quality.push_back({{"score", q.score},
                         {"found_at_10", q.found_at_10},
                         {"found_at_20", q.found_at_20},
                         {"auroc", q.auroc},
                         {"precision_at_flipped", q.precision_at_flipped}});
    }
    core::write_text_atomically(dir / "quality.csv", report::to_csv(t));
    doc.heading("How well each score finds the flipped labels");
    doc.table(t, "Share of the flipped labels among the training images ranked first (best first).");
    report::Table c;
    c.header = {"fraction_inspected"};
    for (const auto& [name, v] : r.scores) c.header.push_back(name);
    for (int64_t i = 0; i < r.curves.size(1); ++i) {
      std::vector<std::string> row = {fmt::format("{:.2f}", static_cast<double>(i + 1) / r.curves.size(1))};
      for (int64_t s = 0; s < r.curves.size(0); ++s) row.push_back(fmt::format("{:.6f}", r.curves[s][i].item<double>()));
      c.rows.push_back(std::move(row));
    }
    core::write_text_atomically(dir / "found.csv", report::to_csv(c));
    report::LinePlotOptions lp;
    lp.title = "Flipped labels found against training images inspected";
    lp.xlabel = "fraction of the training set inspected (ranked by the score)";
    lp.ylabel = "fraction of the flipped labels found";
    for (const auto& [name, v] : r.scores) lp.series_names.push_back(name);
    lp.diagonal = true;
    const auto x = torch::arange(1, r.curves.size(1) + 1, torch::kFloat64) / static_cast<double>(r.curves.size(1));
    report::write_line_plot(dir / "found.png", x, r.curves, lp);
    doc.image("found.png", "found-vs-inspected curves");
  }
  if (cfg.show > 0) {
    const int64_t show = std::min(cfg.show, n);
    const int64_t per_row = 10;
    std::vector<std::vector<report::GridCell>> rows;
    for (int64_t i = 0; i < show; ++i) {
      if (i % per_row == 0) rows.emplace_back();
      const int64_t j = order[i].item<int64_t>();
      report::GridCell c;
      c.image = r.images[j];
      c.caption.push_back(fmt::format("#{} {}", j, class_name(r.record.labels[j].item<int64_t>())));
      if (r.predictions.defined()) c.caption.push_back("pred: " + class_name(r.predictions[j].item<int64_t>()));
      if (flips) {
        c.marked = r.record.flipped[j].item<int>() != 0;
        if (c.marked) c.caption.push_back("was: " + class_name(r.original[j].item<int64_t>()));
      }
      rows.back().push_back(std::move(c));
    }
    report::ImageGridOptions go;
    go.title = fmt::format("The {} training images ranked first by {} (given label, prediction{})", show,
                           r.show_score, flips ? "; red: a flipped label, with the original" : "");
    go.first_column_gap = 0;
    report::write_image_grid(dir / "suspicious.png", rows, go);
    doc.heading("The most suspicious training images");
    doc.image("suspicious.png", "most suspicious training images");
  }
  nlohmann::json scores = nlohmann::json::array();
  for (const auto& [name, v] : r.scores) scores.push_back(name);
  nlohmann::json seconds = nlohmann::json::object();
  for (const auto& [k, v] : r.seconds) seconds[k] = v;
  const nlohmann::json summary = {{"run", r.record.dir.string()},
                                  {"images", n},
                                  {"classes", r.record.classes},
                                  {"noise_fraction", r.record.noise_fraction},
                                  {"flipped", flips ? r.record.flipped.sum().item<int64_t>() : 0},
                                  {"scores", scores},
                                  {"show_score", r.show_score},
                                  {"el2n_epoch", r.el2n_epoch},
                                  {"neighbors", cfg.neighbors},
                                  {"quality", quality},
                                  {"ranked", n},
                                  {"aum_threshold_samples",
                                   r.record.threshold.defined() ? r.record.threshold.sum().item<int64_t>() : 0},
                                  {"aum_threshold", flagged ? nlohmann::json(r.aum_threshold) : nlohmann::json()},
                                  {"aum_flagged", flagged ? nlohmann::json(r.aum_flagged.sum().item<int64_t>())
                                                          : nlohmann::json()},
                                  {"aum_flag_precision",
                                   std::isnan(r.aum_flag_precision) ? nlohmann::json() : nlohmann::json(r.aum_flag_precision)},
                                  {"aum_flag_recall",
                                   std::isnan(r.aum_flag_recall) ? nlohmann::json() : nlohmann::json(r.aum_flag_recall)},
                                  {"store_reused", r.store_reused},
                                  {"warnings", r.warnings},
                                  {"seconds", seconds}};
  publish_outputs(*staged, summary.dump(2) + "\n", doc);
}

}  // namespace gradlens::pipeline
