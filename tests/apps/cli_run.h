// How the apps tests run a command in-process: run_cli() on an argument
// vector, with its exit code, stdout and stderr captured.
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "gradlens/cli.h"

namespace gradlens::cli {

struct CliRun {
  int code;
  std::string out, err;
};

inline CliRun cli_run(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int code = run_cli(args, out, err);
  return {code, out.str(), err.str()};
}

}  // namespace gradlens::cli
