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

#include <cstdio>
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
  const size_t pos = r.out.rfind("\n{");
  return nlohmann::json::parse(pos == std::string::npos ? r.out : r.out.substr(pos + 1));
}

/// scikit-learn's version for /usr/bin/python3 as major * 100 + minor
/// (1.2 -> 102), or 0 when it does not import.
inline int sklearn_version() {
  const CommandResult r =
      run_command(std::string(kPython) + " -c 'import sklearn; print(sklearn.__version__)'");
  int major = 0, minor = 0;
  if (r.exit_code != 0 || std::sscanf(r.out.c_str(), "%d.%d", &major, &minor) != 2) return 0;
  return major * 100 + minor;
}

/// True when scikit-learn's k-means++ draws its centres as 1.2 does, which
/// gradlens reproduces (seed for seed). 1.4 draws the first centre with
/// RandomState.choice instead of randint.
inline bool sklearn_kmeanspp_draws_as_1_2() { return sklearn_version() < 104; }

}  // namespace gradlens::test
