// `gradlens attribute`: which training images made the model predict what it
// predicts on chosen test images (by default its errors): TracIn-CP over the
// epoch checkpoints of a training record (influence/tracin.h), the top
// proponents and opponents of every query. run_attribute() is the in-memory
// library function; write_attribute() writes the output directory
// (docs/formats.md, "Attribution directory").
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "gradlens/influence/tracin.h"
#include "gradlens/pipeline/influence_inputs.h"

namespace gradlens::pipeline {

/// The label of a query's loss: its given label (as Pruthi et al.: for a
/// misclassified query the opponents are the training images that pushed
/// the model away from the right answer) or the final checkpoint's
/// prediction (the proponents are what supports the prediction, right or
/// wrong).
enum class QueryLabel { kTrue, kPred };

/// "true" or "pred".
std::string query_label_name(QueryLabel label);
/// query_label_name()'s inverse. Throws gradlens::Error (usage) naming `flag`.
QueryLabel parse_query_label(const std::string& name, const std::string& flag = "--query-label");

struct AttributeConfig {
  InfluenceConfig input;
  /// "misclassified" (the test images the final checkpoint gets wrong),
  /// "all", or comma-separated positions in the test split ("3,17,42").
  std::string queries = "misclassified";
  QueryLabel query_label = QueryLabel::kTrue;
  /// At most this many queries (the first ones in test-split order; 0 = all).
  int64_t max_queries = 0;
  influence::TracInOptions tracin;
  /// Queries shown in the report, and proponents / opponents per query there.
  int64_t show = 12;
  int64_t show_k = 4;
  /// Also write the full [queries, training images] score matrix (scores.npy).
  bool write_scores = false;
  std::string out = "attribution";
  bool overwrite = false;
};

struct AttributeResult {
  io::TrainRecord record;
  std::vector<std::string> class_names;
  torch::Tensor original_labels;  ///< int64 [N] the data's training labels (before flipping)
  torch::Tensor train_images;     ///< uint8 [N, C, H, W]
  torch::Tensor queries;          ///< int64 [Q] positions in the test split
  torch::Tensor query_images;     ///< uint8 [Q, C, H, W]
  torch::Tensor query_labels, query_predictions;  ///< int64 [Q] (predictions of the final checkpoint)
  influence::TracInResult tracin;
  /// Per query, among its top-k proponents and its top-k opponents: the
  /// share whose training label is the query's predicted class, and the
  /// share whose label was flipped (NaN without --noisy-labels). float64 [Q] each.
  torch::Tensor proponents_of_predicted_class, opponents_of_predicted_class;
  torch::Tensor proponents_flipped, opponents_flipped;
  bool store_reused = false;
  std::vector<std::string> warnings;
  /// Under `gradlens launch`: this process's rank and the number of ranks
  /// (every rank computes a block of the training factors; rank 0 writes).
  int rank = 0, world_size = 1;
  std::vector<std::pair<std::string, double>> seconds;
};

/// Parses --queries against a test split of `test_size` images and the final
/// checkpoint's `correct` flags (bool [test_size]). Throws gradlens::Error
/// naming --queries for an unknown word, a bad or out-of-range index, a
/// duplicate, or no query at all (e.g. no misclassified image).
torch::Tensor parse_queries(const std::string& spec, int64_t test_size, const torch::Tensor& correct);

AttributeResult run_attribute(const AttributeConfig& cfg, const RunContext& ctx = {});

/// Writes proponents.csv, opponents.csv, queries.csv, summary.json,
/// summary.md, report.html (with attribution.png) and, with write_scores,
/// scores.npy into `out` (staged; an existing `out` needs `overwrite`).
void write_attribute(const AttributeResult& r, const AttributeConfig& cfg, const std::filesystem::path& out);

}  // namespace gradlens::pipeline
