#include "gradlens/pipeline/extract.h"

#include <tuple>
#include <torch/types.h>

#include <filesystem>

#include "gradlens/core/check.h"
#include "gradlens/core/runtime.h"
#include "gradlens/data/subset.h"
#include "gradlens/distributed/context.h"
#include "gradlens/models/checkpoint.h"
#include "gradlens/models/model_spec.h"
#include "gradlens/pipeline/data_source.h"

namespace gradlens::pipeline {

std::unique_ptr<models::Classifier> open_model_for(const std::string& spec, torch::Device device,
                                                   int64_t channels, int64_t size, bool channels_last,
                                                   const models::ModelOptions& options) {
  const auto ms = models::resolve_model_spec(spec, "--model", /*architectures=*/false);
  const std::string& path = ms.path;
  if (ms.kind == models::ModelSpec::Kind::kDefault)
    GRADLENS_CHECK(std::filesystem::exists(path), "--model default: the default model ", path,
                   " has not been trained yet; run 'gradlens train' first");
  models::ResNetConfig fresh;
  fresh.in_channels = channels;
  auto m = models::open_classifier(path, device, fresh, size, options);
  GRADLENS_CHECK(m->in_channels() == channels, "--model ", path, " takes ", m->in_channels(),
                 " input channel(s) but the data has ", channels,
                 "; use a model trained on this data (or --channels for an ImageFolder)");
  if (channels_last && device.is_cpu() && channels == 1) m->to_channels_last();
  m->set_conv_algorithm(options.conv);
  return m;
}

extract::ExtractRanks extract_ranks(core::Collectives& comm, int64_t rows, int64_t batch_size) {
  extract::ExtractRanks r;
  std::tie(r.row_begin, r.row_end) = core::shard_range(rows, comm.rank(), comm.world_size(), batch_size);
  r.rank = comm.rank();
  r.world_size = comm.world_size();
  r.gather_rows = [&comm](const torch::Tensor& t) { return comm.gather_rows(t); };
  return r;
}

extract::ExtractRunResult run_extract_command(const ExtractCommandConfig& cfg, const RunContext& ctx) {
  // Under `gradlens launch` or torchrun (RANK, WORLD_SIZE, ...): one block of
  // whole batches per rank, gathered by rank 0 (see docs/scaling.md).
  distributed::RankSetup ranks = distributed::join_ranks(ctx.device);
  distributed::Communicator& comm = ranks.comm;
  const torch::Device device = ranks.device;
  const ModelData md = data_for_models(cfg.data, {cfg.model});
  const data::Dataset full = load_split(md.data, ctx.seed, cfg.split == data::Split::kTrain);
  check_model_classes(md, full);
  extract::ExtractConfig ec = cfg.extract;
  data::Dataset ds = full;
  if (cfg.per_class > 0) {
    ec.indices = data::per_class_indices(full.labels, cfg.per_class, data::SubsetMode::kFirst, 0,
                                         full.num_classes(), full.class_names);
    ds = data::select(full, ec.indices);
  }
  auto model = open_model_for(cfg.model, device, ds.channels(), ds.images.size(3), /*channels_last=*/true,
                              ctx.model);
  GRADLENS_CHECK(model->num_classes() >= ds.num_classes(), "--model ", cfg.model, " has ",
                 model->num_classes(), " classes but the data has ", ds.num_classes());
  ec.model_spec = models::resolve_model_spec(cfg.model, "--model", /*architectures=*/false).path;
  ec.seed = ctx.seed;
  if (ec.dataset_name.empty()) ec.dataset_name = cfg.data.data + ":" + data::split_name(cfg.split);
  if (comm.world_size() > 1) {
    GRADLENS_CHECK(ec.batch_size >= 1, "--batch-size must be >= 1, got ", ec.batch_size);
    ec.ranks = extract_ranks(comm, ds.images.size(0), ec.batch_size);
  }
  auto r = extract::run_extract(*model, ds, ec, ctx.progress);
  if (!md.assumed.empty()) r.warnings.push_back(md.assumed);
  return r;
}

}  // namespace gradlens::pipeline
