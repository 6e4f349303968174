#include "gradlens/pipeline/attribute.h"
#include <torch/types.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <set>
#include <sstream>

#include "gradlens/core/check.h"
#include "gradlens/core/choice.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"
#include "gradlens/core/runtime.h"
#include "gradlens/core/strings.h"
#include "gradlens/core/timer.h"
#include "gradlens/distributed/context.h"
#include "gradlens/models/classifier.h"
#include "gradlens/report/document.h"
#include "gradlens/report/image_grid.h"
#include "gradlens/report/table.h"

namespace gradlens::pipeline {

namespace fs = std::filesystem;

constexpr core::Choice<QueryLabel> kQueryLabels[] = {{"true", QueryLabel::kTrue}, {"pred", QueryLabel::kPred}};

std::string query_label_name(QueryLabel label) { return core::choice_name(kQueryLabels, label); }

QueryLabel parse_query_label(const std::string& name, const std::string& flag) {
  return core::parse_choice(kQueryLabels, name, flag, "label");
}

torch::Tensor parse_queries(const std::string& spec, int64_t test_size, const torch::Tensor& correct) {
  std::vector<int64_t> q;
  if (spec == "misclassified") {
    const auto wrong = correct.logical_not().nonzero().flatten();
    q.assign(wrong.data_ptr<int64_t>(), wrong.data_ptr<int64_t>() + wrong.numel());
    GRADLENS_CHECK_OPTION(!q.empty(), "--queries misclassified: the final checkpoint classifies every one of the ",
                          test_size, " test images correctly; give test positions (--queries 0,1,2) or all");
  } else if (spec == "all") {
    for (int64_t i = 0; i < test_size; ++i) q.push_back(i);
  } else {
    std::set<int64_t> seen;
    std::stringstream ss(spec);
    std::string item;
    while (std::getline(ss, item, ',')) {
      int64_t v = -1;
      size_t used = 0;
      try {
        v = std::stoll(item, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      GRADLENS_CHECK_OPTION(used > 0 && used == item.size(), "--queries: '", item, "' is not a test position; give "
                            "misclassified, all, or comma-separated positions such as 3,17,42");
      GRADLENS_CHECK_OPTION(v >= 0 && v < test_size, "--queries: position ", v, " is outside the test split [0, ",
                            test_size, ")");
      GRADLENS_CHECK_OPTION(seen.insert(v).second, "--queries: position ", v, " is given twice");
      q.push_back(v);
    }
    GRADLENS_CHECK_OPTION(!q.empty(), "--queries: no test position given");
  }
  return torch::tensor(q, torch::kInt64);
}

AttributeResult run_attribute(const AttributeConfig& cfg, const RunContext& ctx) {
  GRADLENS_CHECK_OPTION(cfg.max_queries >= 0, "--max-queries must be >= 0, got ", cfg.max_queries);
  GRADLENS_CHECK_OPTION(cfg.show >= 0 && cfg.show_k >= 0, "--show and --show-k must be >= 0");
  const core::Stopwatch t_all;
  distributed::RankSetup ranks = distributed::join_ranks(ctx.device);
  distributed::Communicator& comm = ranks.comm;
  const InfluenceConfig& input = cfg.input;
  RunContext rank_ctx = ctx;
  rank_ctx.device = ranks.device;
  auto in = load_influence_inputs(input, rank_ctx, true, comm);
  AttributeResult r;
  r.rank = comm.rank();
  r.world_size = comm.world_size();
  r.record = in.record;
  r.class_names = in.splits.train.class_names;
  r.original_labels = in.original_labels;
  r.train_images = in.splits.train.images;
  r.store_reused = in.store_reused;
  r.warnings = in.warnings;
  r.seconds.emplace_back("training gradients", t_all.seconds());

  const core::Stopwatch t_q;
  const auto& test = in.splits.test;
  GRADLENS_CHECK(test.size() > 0, "--data: the test split is empty; attribute needs test images to explain");
  const torch::Device device = ranks.device;
  const auto& ckpts = r.record.checkpoints;
  // The final checkpoint's predictions on the whole test split choose the
  // queries (the head alone: no backward pass).
  auto final_model = open_epoch_checkpoint(ckpts.back(), device, ctx.model);
  {
    InfluenceConfig head_only = input;
    head_only.projection.layers.clear();
    const auto preds = checkpoint_factors(*final_model, test, test.labels, head_only, comm).logits.argmax(1);
    r.queries = parse_queries(cfg.queries, test.size(), preds.eq(test.labels));
    if (cfg.max_queries > 0 && r.queries.size(0) > cfg.max_queries) r.queries = r.queries.slice(0, 0, cfg.max_queries);
    r.query_predictions = preds.index_select(0, r.queries);
  }
  data::Dataset qset = test;
  qset.images = test.images.index_select(0, r.queries);
  qset.labels = test.labels.index_select(0, r.queries);
  r.query_images = qset.images;
  r.query_labels = qset.labels;
  const auto loss_labels = cfg.query_label == QueryLabel::kTrue ? qset.labels : r.query_predictions;
  std::vector<influence::GradientFactors> query_factors;
  for (size_t t = 0; t < ckpts.size(); ++t) {
    auto model = t + 1 < ckpts.size() ? open_epoch_checkpoint(ckpts[t], device, ctx.model) : std::move(final_model);
    query_factors.push_back(checkpoint_factors(*model, qset, loss_labels, cfg.input, comm));
  }
  r.seconds.emplace_back("query gradients", t_q.seconds());

  const core::Stopwatch t_s;
  auto opts = cfg.tracin;
  opts.keep_scores = cfg.write_scores;
  r.tracin = influence::tracin(in.train, query_factors, in.step_sizes, opts);
  r.seconds.emplace_back("scores", t_s.seconds());

  auto of_predicted = [&](const torch::Tensor& idx) {
    const auto l = r.record.labels.index_select(0, idx.flatten()).view_as(idx);
    return l.eq(r.query_predictions.unsqueeze(1)).to(torch::kFloat64).mean(1);
  };
  auto flipped = [&](const torch::Tensor& idx) {
    if (!r.record.flipped.defined()) return torch::full({idx.size(0)}, std::nan(""), torch::kFloat64);
    return r.record.flipped.index_select(0, idx.flatten()).view_as(idx).to(torch::kFloat64).mean(1);
  };
  r.proponents_of_predicted_class = of_predicted(r.tracin.proponents);
  r.opponents_of_predicted_class = of_predicted(r.tracin.opponents);
  r.proponents_flipped = flipped(r.tracin.proponents);
  r.opponents_flipped = flipped(r.tracin.opponents);
  r.seconds.emplace_back("total", t_all.seconds());
  return r;
}

void write_attribute(const AttributeResult& r, const AttributeConfig& cfg, const fs::path& out) {
  const auto staged = stage_output(out, cfg.overwrite);
  const auto& dir = staged->path();
  const auto& names = r.class_names;
  auto class_name = [&](int64_t c) { return class_name_of(names, c); };
  const bool flips = r.record.flipped.defined();
  const int64_t q = r.queries.size(0);
  auto ranking = [&](const torch::Tensor& idx, const torch::Tensor& score) {
    report::Table t;
    t.header = {"query", "test_index", "test_label", "test_label_name", "predicted", "predicted_name",
                "rank", "train_index", "train_label", "train_label_name"};
    if (flips) t.header.insert(t.header.end(), {"train_original_label", "train_flipped"});
    t.header.push_back("score");
    for (int64_t i = 0; i < q; ++i)
      for (int64_t j = 0; j < idx.size(1); ++j) {
        const int64_t tr = idx[i][j].item<int64_t>();
        const int64_t yl = r.query_labels[i].item<int64_t>(), pl = r.query_predictions[i].item<int64_t>();
        const int64_t tl = r.record.labels[tr].item<int64_t>();
        std::vector<std::string> row = {std::to_string(i), std::to_string(r.queries[i].item<int64_t>()),
                                        std::to_string(yl), class_name(yl), std::to_string(pl), class_name(pl),
                                        std::to_string(j + 1), std::to_string(tr), std::to_string(tl), class_name(tl)};
        if (flips) {
          row.push_back(std::to_string(r.original_labels[tr].item<int64_t>()));
          row.push_back(std::to_string(r.record.flipped[tr].item<int>()));
        }
        row.push_back(fmt::format("{:.9g}", score[i][j].item<double>()));
        t.rows.push_back(std::move(row));
      }
    return t;
  };
  core::write_text_atomically(dir / "proponents.csv",
                              report::to_csv(ranking(r.tracin.proponents, r.tracin.proponent_scores)));
  core::write_text_atomically(dir / "opponents.csv",
                              report::to_csv(ranking(r.tracin.opponents, r.tracin.opponent_scores)));
  {
    report::Table t;
    t.header = {"query", "test_index", "test_label", "predicted", "proponents_of_predicted_class",
                "opponents_of_predicted_class", "proponents_flipped", "opponents_flipped"};
    for (int64_t i = 0; i < q; ++i)
      t.rows.push_back({std::to_string(i), std::to_string(r.queries[i].item<int64_t>()),
                        class_name(r.query_labels[i].item<int64_t>()),
                        class_name(r.query_predictions[i].item<int64_t>()),
                        report::format_number(r.proponents_of_predicted_class[i].item<double>()),
                        report::format_number(r.opponents_of_predicted_class[i].item<double>()),
                        report::format_number(r.proponents_flipped[i].item<double>()),
                        report::format_number(r.opponents_flipped[i].item<double>())});
    core::write_text_atomically(dir / "queries.csv", report::to_csv(t));
  }
  if (cfg.write_scores) core::write_npy(dir / "scores.npy", r.tracin.scores.to(torch::kFloat32));

  const int64_t misclassified = r.query_predictions.ne(r.query_labels).sum().item<int64_t>();
  report::Document doc("Which training images made these predictions");
  const bool by_true = cfg.query_label == QueryLabel::kTrue;
  doc.paragraph(fmt::format(
      "TracIn-CP over {} epoch checkpoints of {} ({} training images), on the final linear layer{}: {} test "
      "images ({} misclassified by the final checkpoint), each scored by its loss with its {}. A proponent's "
      "training steps lowered that loss (pushed the model towards the {}); an opponent's raised it{}. "
      "proponents.csv and opponents.csv list the top {} of each query.",
      r.record.checkpoints.size(), r.record.dir.filename().string(), r.record.images,
      cfg.tracin.cosine ? " (cosine-normalised)" : "", q, misclassified,
      by_true ? "true label" : "predicted label", by_true ? "right answer" : "prediction",
      by_true ? ": for a misclassified query, the opponents are the training images behind the error" : "",
      r.tracin.proponents.size(1)));
  const double prop_pred = r.proponents_of_predicted_class.mean().item<double>();
  const double opp_pred = r.opponents_of_predicted_class.mean().item<double>();
  doc.paragraph(fmt::format(
      "Of a query's top training images, {:.1f}% of the proponents and {:.1f}% of the opponents carry the class "
      "the model predicted{}.",
      100 * prop_pred, 100 * opp_pred,
      flips ? fmt::format("; {:.1f}% of the proponents and {:.1f}% of the opponents had their label flipped "
                          "({:.1f}% of the training set had)",
                          100 * r.proponents_flipped.mean().item<double>(),
                          100 * r.opponents_flipped.mean().item<double>(),
                          100 * r.record.flipped.to(torch::kFloat64).mean().item<double>())
            : std::string()));
  const int64_t show = std::min(cfg.show, q);
  const int64_t show_k = std::min(cfg.show_k, r.tracin.proponents.size(1));
  if (show > 0 && show_k > 0) {
    std::vector<std::vector<report::GridCell>> rows;
    for (int64_t i = 0; i < show; ++i) {
      std::vector<report::GridCell> row;
      report::GridCell qc;
      qc.image = r.query_images[i];
      const int64_t yl = r.query_labels[i].item<int64_t>(), pl = r.query_predictions[i].item<int64_t>();
      qc.caption = {fmt::format("test #{}", r.queries[i].item<int64_t>()), "true: " + class_name(yl),
                    "pred: " + class_name(pl)};
      qc.marked = yl != pl;
      row.push_back(qc);
      auto add = [&](const torch::Tensor& idx, const torch::Tensor& sc, int64_t j) {
        const int64_t tr = idx[i][j].item<int64_t>();
        report::GridCell c;
        c.image = r.train_images[tr];
        c.caption = {fmt::format("#{} {:+.3g}", tr, sc[i][j].item<double>()),
                     class_name(r.record.labels[tr].item<int64_t>())};
        if (flips && r.record.flipped[tr].item<int>() != 0) {
          c.marked = true;
          c.caption.push_back("was: " + class_name(r.original_labels[tr].item<int64_t>()));
        }
        row.push_back(c);
      };
      for (int64_t j = 0; j < show_k; ++j) add(r.tracin.proponents, r.tracin.proponent_scores, j);
      for (int64_t j = 0; j < show_k; ++j) add(r.tracin.opponents, r.tracin.opponent_scores, j);
      rows.push_back(std::move(row));
    }
    report::ImageGridOptions go;
    go.title = fmt::format("Each query, its {} strongest proponents, then its {} strongest opponents{}", show_k,
                           show_k, flips ? " (red: a flipped training label, with the original)" : "");
    go.column_titles.push_back("query");
    for (int64_t j = 0; j < show_k; ++j) go.column_titles.push_back(fmt::format("proponent {}", j + 1));
    for (int64_t j = 0; j < show_k; ++j) go.column_titles.push_back(fmt::format("opponent {}", j + 1));
    report::write_image_grid(dir / "attribution.png", rows, go);
    doc.image("attribution.png", "queries with their proponents and opponents");
  }
  nlohmann::json seconds = nlohmann::json::object();
  for (const auto& [k, v] : r.seconds) seconds[k] = v;
  const nlohmann::json summary = {
      {"run", r.record.dir.string()},
      {"checkpoints", r.record.checkpoints.size()},
      {"training_images", r.record.images},
      {"queries", q},
      {"queries_spec", cfg.queries},
      {"misclassified_queries", misclassified},
      {"top_k", r.tracin.proponents.size(1)},
      {"cosine", cfg.tracin.cosine},
      {"layers", "the final linear layer (exact)" +
                     (cfg.input.projection.layers.empty()
                          ? std::string()
                          : " + " + core::join(cfg.input.projection.layers, ", ") + " (projected)")},
      {"projection", cfg.input.projection.layers.empty() ? nlohmann::json() : nlohmann::json(cfg.input.projection.describe())},
      {"query_label", query_label_name(cfg.query_label)},
      {"mean_proponents_of_predicted_class", prop_pred},
      {"mean_opponents_of_predicted_class", opp_pred},
      {"mean_proponents_flipped", flips ? nlohmann::json(r.proponents_flipped.mean().item<double>()) : nlohmann::json()},
      {"mean_opponents_flipped", flips ? nlohmann::json(r.opponents_flipped.mean().item<double>()) : nlohmann::json()},
      {"store_reused", r.store_reused},
      {"warnings", r.warnings},
      {"seconds", seconds}};
  publish_outputs(*staged, summary.dump(2) + "\n", doc);
}

}  // namespace gradlens::pipeline
