// gradlens attribute and gradlens label-errors: training-data attribution and
// label-noise scores over a training record (train --save-every-epoch
// --record-dynamics [--noisy-labels F]).
#include <fmt/format.h>

#include <cmath>
#include <memory>
#include <ostream>

#include "gradlens/commands/commands.h"
#include "gradlens/commands/data_flags.h"
#include "gradlens/commands/value_checks.h"
#include "gradlens/pipeline/attribute.h"
#include "gradlens/pipeline/label_errors.h"
#include "gradlens/progress_printer.h"

namespace gradlens::cli {

namespace {

void add_influence_input_flags(CLI::App* cmd, pipeline::InfluenceConfig& in, std::string& projection) {
  add_data_flags(cmd, in.data);
  cmd->add_option("--run", in.run,
                  "The --out directory of 'gradlens train --save-every-epoch --record-dynamics' (the training "
                  "record; its data flags are used unless data flags are given)")
      ->required();
  cmd->add_option("--store", in.store,
                  "Where the training set's per-checkpoint gradient factors are kept and reused (default: "
                  "RUN/influence-store)");
  cmd->add_option("--batch-size", in.batch_size, "Images per forward pass")->capture_default_str()
      ->check(whole(1, 1 << 20));
  auto& p = in.projection;
  cmd->add_option("--param-layers", p.layers,
                  "Comma list of convolutions (e.g. layer4.1.conv2) whose per-sample gradients join the final "
                  "linear layer's, randomly projected to --proj-dim numbers each (default: the head alone, exact)")
      ->delimiter(',');
  cmd->add_option("--proj-dim", p.dim, "Numbers kept per projected layer")->capture_default_str()
      ->check(whole(1, 1 << 24));
  cmd->add_option("--proj-seed", p.seed, "Seed of the projection matrices")->capture_default_str()->check(whole(0));
  cmd->add_option("--projection", projection, "gaussian | rademacher")->capture_default_str()
      ->check(CLI::IsMember({"gaussian", "rademacher"}));
}

void finish_influence_input(pipeline::InfluenceConfig& in, const std::string& projection) {
  in.projection.kind = influence::parse_projection_kind(projection);
}

void add_output_flags(CLI::App* cmd, std::string& out, bool& overwrite) {
  cmd->add_option("--out", out, "Output directory")->capture_default_str();
  cmd->add_flag("--overwrite", overwrite, "Replace --out if it exists");
}

// Ranks other than 0 of a `gradlens launch` say so and write nothing.
bool note_other_rank(std::ostream& out, int rank, int world_size, const std::string& dir) {
  if (rank == 0) return false;
  out << fmt::format("rank {} of {}: computed its block of the gradients; rank 0 writes {}\n", rank, world_size, dir);
  return true;
}

void print_attribute(std::ostream& out, const pipeline::AttributeResult& r) {
  out << fmt::format("{} queries ({} misclassified) against {} training images over {} checkpoints{}\n",
                     r.queries.size(0), r.query_predictions.ne(r.query_labels).sum().item<int64_t>(),
                     r.record.images, r.record.checkpoints.size(),
                     r.store_reused ? " (training gradients from the store)" : "");
  out << fmt::format("labelled as the predicted class: {:.1f}% of the top proponents, {:.1f}% of the top "
                     "opponents\n",
                     100 * r.proponents_of_predicted_class.mean().item<double>(),
                     100 * r.opponents_of_predicted_class.mean().item<double>());
  if (r.record.flipped.defined())
    out << fmt::format("with a flipped label: {:.1f}% of the top proponents, {:.1f}% of the top opponents "
                       "(training set: {:.1f}%)\n",
                       100 * r.proponents_flipped.mean().item<double>(),
                       100 * r.opponents_flipped.mean().item<double>(),
                       100 * r.record.flipped.to(torch::kFloat64).mean().item<double>());
}

void print_label_errors(std::ostream& out, const pipeline::LabelErrorsResult& r) {
  out << fmt::format("{} training images scored by {} score(s){}\n", r.record.images, r.scores.size(),
                     r.store_reused ? " (training gradients from the store)" : "");
  if (!r.quality.empty()) {
    out << fmt::format("{} flipped labels; share found in the top 10% / 20% of each ranking:\n",
                       r.record.flipped.sum().item<int64_t>());
    for (const auto& q : r.quality)
      out << fmt::format("  {:<22} {:6.1f}% {:6.1f}%  AUROC {:.4f}\n", q.score, 100 * q.found_at_10,
                         100 * q.found_at_20, q.auroc);
  }
  if (r.aum_flagged.defined()) {
    out << fmt::format("AUM threshold {:.4f} (99th percentile of {} threshold samples): {} images flagged",
                       r.aum_threshold, r.record.threshold.sum().item<int64_t>(),
                       r.aum_flagged.sum().item<int64_t>());
    if (!std::isnan(r.aum_flag_precision))
      out << fmt::format(", precision {:.1f}%, recall {:.1f}%", 100 * r.aum_flag_precision,
                         100 * r.aum_flag_recall);
    out << "\n";
  }
}

// The action of attribute / label-errors: finish the flags, run, and on
// rank 0 write the outputs and print what `print` says of them.
template <class Config, class Result>
void set_influence_action(CLI::App* cmd, Context& ctx, std::shared_ptr<Config> cfg,
                          std::shared_ptr<std::string> projection,
                          Result (*run)(const Config&, const pipeline::RunContext&),
                          void (*write)(const Result&, const Config&, const std::filesystem::path&),
                          void (*print)(std::ostream&, const Result&)) {
  cmd->callback([cmd, &ctx, cfg, projection, run, write, print] {
    const bool from_record = !data_flags_given(cmd);
    ctx.action = [&ctx, cfg, projection, run, write, print, from_record] {
      auto c = *cfg;
      c.input.data_from_record = from_record;
      finish_influence_input(c.input, *projection);
      ProgressPrinter printer(*ctx.err, ProgressPrinter::stderr_is_tty());
      const auto r = run(c, run_context(ctx, printer));
      auto& out = *ctx.out;
      if (note_other_rank(out, r.rank, r.world_size, c.out)) return 0;
      write(r, c, c.out);
      print(out, r);
      for (const auto& w : r.warnings) *ctx.err << "warning: " << w << "\n";
      out << fmt::format("written: {}\n", c.out);
      return 0;
    };
  });
}

}  // namespace

void add_attribute_command(CLI::App& app, Context& ctx) {
  auto cfg = std::make_shared<pipeline::AttributeConfig>();
  auto projection = std::make_shared<std::string>("gaussian");
  auto* cmd = app.add_subcommand(
      "attribute",
      "Which training images made the model predict what it predicts: TracIn-CP over the epoch checkpoints "
      "of a training record, top proponents and opponents of each test image (default: its errors)");
  add_influence_input_flags(cmd, cfg->input, *projection);
  cmd->add_option("--queries", cfg->queries,
                  "misclassified | all | comma-separated positions in the test split")
      ->capture_default_str();
  add_choice(cmd, "--query-label", cfg->query_label, pipeline::parse_query_label, pipeline::query_label_name,
             "The label of each query's loss: true (its given label; opponents explain an error) | pred (the "
             "model's prediction; proponents support it)");
  cmd->add_option("--max-queries", cfg->max_queries, "At most this many queries (0 = all)")->capture_default_str()
      ->check(whole(0));
  cmd->add_option("--top-k", cfg->tracin.top_k, "Proponents and opponents kept per query")->capture_default_str()
      ->check(whole(1, 100000));
  cmd->add_flag("--cosine", cfg->tracin.cosine,
                "Normalise each checkpoint's gradient inner product by the two gradient norms");
  cmd->add_option("--show", cfg->show, "Queries shown in the report")->capture_default_str()->check(whole(0, 10000));
  cmd->add_option("--show-k", cfg->show_k, "Proponents and opponents per query in the report")
      ->capture_default_str()->check(whole(0, 100));
  cmd->add_flag("--write-scores", cfg->write_scores,
                "Also write the full [queries, training images] score matrix as scores.npy");
  add_output_flags(cmd, cfg->out, cfg->overwrite);
  set_influence_action(cmd, ctx, cfg, projection, &pipeline::run_attribute, &pipeline::write_attribute,
                       &print_attribute);
}

void add_label_errors_command(CLI::App& app, Context& ctx) {
  auto cfg = std::make_shared<pipeline::LabelErrorsConfig>();
  auto projection = std::make_shared<std::string>("gaussian");
  auto* cmd = app.add_subcommand(
      "label-errors",
      "Rank the training images of a training record by how likely their label is wrong (self-influence, AUM, "
      "forgetting, EL2N, GraNd, data maps, confidence, neighbours), and score the ranking on --noisy-labels flips");
  add_influence_input_flags(cmd, cfg->input, *projection);
  cmd->add_option("--scores", cfg->scores,
                  "Comma list of scores (default: every one the record allows): self_influence, grand, el2n, aum, "
                  "forgetting, low_confidence, variability, self_confidence, normalized_margin, "
                  "neighbor_disagreement")
      ->delimiter(',');
  cmd->add_option("--el2n-epoch", cfg->el2n_epoch,
                  "Epoch of EL2N and GraNd (1-based; 0 = the second, or the first of a one-epoch run)")
      ->capture_default_str()
      ->check(whole(0, 100000, "0 = the second epoch"));
  cmd->add_option("--neighbors", cfg->neighbors, "Neighbours of neighbor_disagreement")->capture_default_str()
      ->check(whole(1, 10000));
  cmd->add_option("--show", cfg->show, "Training images shown in the report")->capture_default_str()
      ->check(whole(0, 10000));
  cmd->add_option("--show-score", cfg->show_score,
                  "The score that orders scores.csv and the report (default: self_influence, else aum)");
  add_output_flags(cmd, cfg->out, cfg->overwrite);
  set_influence_action(cmd, ctx, cfg, projection, &pipeline::run_label_errors, &pipeline::write_label_errors,
                       &print_label_errors);
}

}  // namespace gradlens::cli
