// Helpers for the analysis peer tests (metrics, cluster, reduce, analysis):
// exchange tensors with Debian's python3 through .npy files and run the
// scikit-learn scripts in tests/python/sk_*.py. Header-only so that every
// area's peer test binary can use it.
#pragma once

#include "gradlens/core/npy.h"
#include "support/support.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace gradlens::test {

/// Writes `t` as .npy (gradlens' own writer, byte-identical to np.save).
inline void save_npy(const fs::path& path, const torch::Tensor& t) { core::write_npy(path, t); }

/// Reads a .npy written by numpy; int32 (some sklearn outputs) is widened to int64.
inline torch::Tensor load_npy(const fs::path& path) {
  torch::Tensor t = core::read_npy(path);
  return t.scalar_type() == torch::kInt32 ? t.to(torch::kInt64) : t;
}

/// Runs tests/python/<script> with `args` under Debian's python3; returns its
/// stdout parsed as JSON (the script prints one JSON document last). Fails the
/// test (via exception) when the script fails.
inline nlohmann::json run_peer_script(const std::string& script, const std::string& args) {
  const std::string cmd = std::string(kPython) + " " + source_path("tests/python/" + script).string() + " " + args;
  const CommandResult r = run_command(cmd);
  if (r.exit_code != 0) throw std::runtime_error("peer script failed: " + cmd + "\n" + r.output);
  const size_t pos = r.output.rfind("\n{");
  return nlohmann::json::parse(pos == std::string::npos ? r.output : r.output.substr(pos + 1));
}

}  // namespace gradlens::test
