// Reading extraction run directories (written by extract::run_extract; the
// format is in docs/formats.md, "The extraction run directory").
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "gradlens/extract/run.h"

namespace gradlens::io {

/// Reads `dir`/manifest.json and the run's labels (and predictions, when the
/// file is there); the float outputs stay on disk and are read one at a time
/// by ExtractRun::load(). Manifest audits without a name get their key.
///
/// Throws c10::Error naming the directory or file (and saying what to do):
/// no such directory; no manifest.json; invalid JSON; not a gradlens-extract
/// manifest; unreadable labels, or labels that are not int64 [N].
extract::ExtractRun read_run(const std::filesystem::path& dir);

}  // namespace gradlens::io
