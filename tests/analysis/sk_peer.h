// Helpers for the analysis peer tests (metrics, cluster, reduce, analysis):
// exchange tensors with Debian's python3 through .npy files and run the
// scikit-learn scripts in tests/python/sk_*.py. Header-only so that every
// area's peer test binary can use it.
#pragma once

#include "support/support.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace gradlens::test {

/// Writes a contiguous CPU copy of `t` (float32, float64 or int64) as .npy v1.0.
inline void save_npy(const fs::path& path, const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kCPU).contiguous();
  std::string descr;
  if (c.scalar_type() == torch::kFloat64) {
    descr = "<f8";
  } else if (c.scalar_type() == torch::kFloat32) {
    descr = "<f4";
  } else if (c.scalar_type() == torch::kInt64) {
    descr = "<i8";
  } else {
    throw std::runtime_error("save_npy: unsupported dtype");
  }
  std::string shape = "(";
  for (int64_t s : c.sizes()) shape += std::to_string(s) + ",";
  shape += ")";
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  f.write(reinterpret_cast<const char*>(&len), 2);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  f.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.nbytes()));
  if (!f) throw std::runtime_error("save_npy: cannot write " + path.string());
}

/// Reads a C-order .npy of <f8, <f4, <i8 or <i4 (int32 is widened to int64).
inline torch::Tensor load_npy(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("load_npy: cannot open " + path.string());
  char magic[8];
  f.read(magic, 8);
  uint16_t len = 0;
  f.read(reinterpret_cast<char*>(&len), 2);
  std::string header(len, '\0');
  f.read(header.data(), len);
  if (header.find("'fortran_order': False") == std::string::npos) {
    throw std::runtime_error("load_npy: only C order: " + path.string());
  }
  torch::ScalarType dtype;
  size_t item = 8;
  bool widen = false;
  if (header.find("<f8") != std::string::npos) {
    dtype = torch::kFloat64;
  } else if (header.find("<f4") != std::string::npos) {
    dtype = torch::kFloat32;
    item = 4;
  } else if (header.find("<i8") != std::string::npos) {
    dtype = torch::kInt64;
  } else if (header.find("<i4") != std::string::npos) {
    dtype = torch::kInt32;
    item = 4;
    widen = true;
  } else {
    throw std::runtime_error("load_npy: unsupported dtype in " + path.string() + ": " + header);
  }
  const size_t a = header.find('(', header.find("'shape'"));
  const size_t b = header.find(')', a);
  std::vector<int64_t> shape;
  std::stringstream ss(header.substr(a + 1, b - a - 1));
  std::string tok;
  int64_t numel = 1;
  while (std::getline(ss, tok, ',')) {
    if (tok.find_first_not_of(' ') == std::string::npos) continue;
    shape.push_back(std::stoll(tok));
    numel *= shape.back();
  }
  torch::Tensor t = torch::empty(shape, dtype);
  f.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(numel * item));
  if (!f) throw std::runtime_error("load_npy: truncated " + path.string());
  return widen ? t.to(torch::kInt64) : t;
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
