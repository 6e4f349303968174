// Flags shared by the commands that read a dataset.
#pragma once

#include <CLI/CLI.hpp>

#include "gradlens/pipeline/train.h"

namespace gradlens::cli {

/// Adds --data, --data-dir, --image-size, --resize, --mean, --std,
/// --input-range, --channels, --skip-bad-images, --test-fraction,
/// --train-per-class, --test-per-class, --subset to `cmd`, bound to `d`.
void add_data_flags(CLI::App* cmd, pipeline::DataConfig& d);

/// Whether any of those flags was given on the command line of `cmd`.
bool data_flags_given(const CLI::App* cmd);

}  // namespace gradlens::cli
