// PNG files (8-bit RGB), written atomically with stb_image_write.
#pragma once

#include <filesystem>

#include "gradlens/report/canvas.h"

namespace gradlens::report {

/// Writes `canvas` as an 8-bit RGB PNG at `path`, atomically
/// (core::write_atomically). Throws c10::Error naming the path when it cannot
/// be written.
void write_png(const std::filesystem::path& path, const Canvas& canvas);

}  // namespace gradlens::report
