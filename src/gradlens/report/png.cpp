#include "gradlens/report/png.h"
#include <torch/types.h>

#include <stb_image_write.h>

#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"

namespace gradlens::report {

void write_png(const std::filesystem::path& path, const Canvas& canvas) {
  GRADLENS_CHECK(canvas.width >= 1 && canvas.height >= 1 &&
                     static_cast<int64_t>(canvas.pixels.size()) == 3 * canvas.width * canvas.height,
                 "write_png ", path.string(), ": the canvas is empty or inconsistent");
  core::write_atomically(path, [&](const std::filesystem::path& tmp) {
    const int ok = stbi_write_png(tmp.c_str(), static_cast<int>(canvas.width),
                                  static_cast<int>(canvas.height), 3, canvas.pixels.data(),
                                  static_cast<int>(3 * canvas.width));
    GRADLENS_CHECK(ok != 0, "cannot write the PNG ", path.string(),
                   " (disk full or directory not writable); choose another --out");
  });
}

}  // namespace gradlens::report
