#include "gradlens/io/run_dir.h"
#include <torch/types.h>

#include <nlohmann/json.hpp>

#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"
#include "gradlens/core/npy.h"

namespace gradlens::io {

namespace fs = std::filesystem;
using json = nlohmann::json;

extract::ExtractRun read_run(const fs::path& dir) {
  GRADLENS_CHECK(fs::is_directory(dir), "RUN_DIR ", dir.string(),
                 ": no such directory; give a run directory written by 'gradlens extract --out'");
  const fs::path mp = dir / "manifest.json";
  GRADLENS_CHECK(fs::exists(mp), "RUN_DIR ", dir.string(),
                 " is not a gradlens run directory (no manifest.json); run 'gradlens extract --out ",
                 dir.string(), "' first");
  json j;
  try {
    j = json::parse(core::read_file(mp));
  } catch (const json::exception& e) {
    GRADLENS_CHECK(false, mp.string(), ": not valid JSON (", e.what(), "); re-run 'gradlens extract'");
  }
  extract::ExtractRun run;
  run.dir = dir;
  try {
    run.manifest = j.get<extract::RunManifest>();
  } catch (const c10::Error& e) {
    GRADLENS_CHECK(false, mp.string(), ": ", e.msg());
  }
  for (auto& [name, audit] : run.manifest.audits)
    if (audit.name.empty()) audit.name = name;

  if (run.manifest.checksums.empty())
    run.manifest.warnings.push_back(dir.string() + " was written before gradlens recorded checksums: its arrays are "
                                    "read unverified (re-run 'gradlens extract' to add them)");
  const fs::path labels_path = dir / run.manifest.labels_file;
  run.verify_file(run.manifest.labels_file);
  try {
    run.labels = core::read_npy(labels_path);
  } catch (const std::exception& e) {
    GRADLENS_CHECK(false, error_message(e), "; the run directory is damaged: re-run 'gradlens extract'");
  }
  GRADLENS_CHECK(run.labels.dim() == 1 && run.labels.scalar_type() == torch::kLong, labels_path.string(),
                 ": expected int64 [N] labels, got ", c10::toString(run.labels.scalar_type()), " ",
                 run.labels.sizes(), "; re-run 'gradlens extract'");
  const fs::path preds_path = dir / run.manifest.preds_file;
  if (fs::exists(preds_path)) {
    run.verify_file(run.manifest.preds_file);
    const auto p = core::read_npy(preds_path);
    if (p.dim() == 1 && p.scalar_type() == torch::kLong && p.size(0) == run.labels.size(0)) run.preds = p;
  }
  const int64_t classes = run.manifest.num_classes;
  if (classes > 0 && run.labels.numel() > 0) {
    const int64_t lo = run.labels.min().item<int64_t>(), hi = run.labels.max().item<int64_t>();
    GRADLENS_CHECK(lo >= 0 && hi < classes, labels_path.string(), ": labels must lie in [0, ", classes,
                   ") (manifest.json's num_classes) but range over [", lo, ", ", hi,
                   "]; the run directory is damaged: re-run 'gradlens extract'");
  }
  return run;
}

}  // namespace gradlens::io
