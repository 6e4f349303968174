// The gradlens command line: a thin layer that binds flags into the library's
// config structs and calls gradlens::pipeline::run_<command>().
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace gradlens::cli {

/// Parses `args` (without the program name) and runs the chosen command.
/// Returns the exit code: 0 success, 1 runtime error, 2 usage error.
/// Messages go to `out`/`err`; nothing here calls exit().
int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace gradlens::cli
