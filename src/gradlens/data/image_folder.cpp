#include "gradlens/data/image_folder.h"
#include <torch/types.h>
#include <ATen/Parallel.h>

#include <stb_image.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "gradlens/core/check.h"
#include "gradlens/core/runtime.h"
#include "gradlens/core/fs.h"
#include "gradlens/data/image_ops.h"

namespace gradlens::data {

namespace fs = std::filesystem;

namespace {

constexpr const char* kMaskSuffix = ".mask.png";
// torchvision.datasets.folder.IMG_EXTENSIONS
constexpr const char* kImageExtensions[] = {".jpg", ".jpeg", ".png", ".ppm", ".bmp",
                                            ".pgm", ".tif",  ".tiff", ".webp"};

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_image_name(const std::string& name) {
  const std::string l = lower(name);
  for (const char* ext : kImageExtensions)
    if (ends_with(l, ext)) return true;
  return false;
}

bool is_mask_name(const std::string& name) { return ends_with(lower(name), kMaskSuffix); }

/// "<dir>/<stem>.mask.png" for "<dir>/<stem>.<ext>".
fs::path mask_path_for(const fs::path& image) {
  return image.parent_path() / (image.stem().string() + kMaskSuffix);
}

/// Every directory at or below `dir` (following symlinks, as os.walk with
/// followlinks=True), sorted by path string like sorted(os.walk(dir)).
std::vector<fs::path> walk_dirs(const fs::path& dir) {
  std::vector<fs::path> dirs{dir};
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(
           dir, fs::directory_options::follow_directory_symlink |
                    fs::directory_options::skip_permission_denied,
           ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code ec2;
    if (it->is_directory(ec2)) dirs.push_back(it->path());
  }
  std::sort(dirs.begin(), dirs.end(),
            [](const fs::path& a, const fs::path& b) { return a.string() < b.string(); });
  return dirs;
}

/// Decodes `bytes` to uint8 [H, W, C] with C = 1 for grey sources (when
/// `allow_gray`) and 3 otherwise; alpha is dropped.
torch::Tensor decode_bytes(const std::string& bytes, const std::string& path, bool allow_gray) {
  GRADLENS_CHECK(bytes.size() < static_cast<size_t>(std::numeric_limits<int>::max()), path,
                 ": file too large to decode");
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int len = static_cast<int>(bytes.size());
  int w = 0, h = 0, comp = 0;
  const bool info = stbi_info_from_memory(data, len, &w, &h, &comp) != 0;
  GRADLENS_CHECK(info, path, ": cannot decode image (", stbi_failure_reason(),
                 "); gradlens reads PNG, JPEG, BMP and PPM/PGM files: re-encode or remove it, or "
                 "skip unreadable images (skip_bad_images / --skip-bad-images)");
  // A damaged header can claim a huge image in a few bytes (found by
  // image_fuzz): refuse it before stb allocates and fills it.
  constexpr int64_t kMaxPixels = int64_t{1} << 25;
  // (stb's info reports a top-down BMP's height as negative.)
  const int64_t claimed = std::llabs(static_cast<int64_t>(w)) * std::llabs(static_cast<int64_t>(h));
  GRADLENS_CHECK(claimed <= kMaxPixels, path, ": the image claims ", std::llabs(w), "x", std::llabs(h),
                 " pixels, more than the ", kMaxPixels, " gradlens decodes; the file is damaged or too large: "
                 "downscale it, or skip unreadable images (--skip-bad-images)");
  const int want = (allow_gray && comp <= 2) ? 1 : 3;
  stbi_uc* pixels = stbi_load_from_memory(data, len, &w, &h, &comp, want);
  GRADLENS_CHECK(pixels != nullptr && w > 0 && h > 0, path, ": cannot decode image (",
                 stbi_failure_reason(),
                 "); the file is damaged: re-encode or remove it, or skip unreadable images "
                 "(skip_bad_images / --skip-bad-images)");
  auto t = torch::empty({h, w, want}, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), pixels, static_cast<size_t>(h) * w * want);
  stbi_image_free(pixels);
  return t;
}

torch::Tensor to_channels(torch::Tensor hwc, int channels) {
  if (channels == 1) return rgb_to_gray(hwc);
  if (hwc.size(2) == 1) return hwc.expand({hwc.size(0), hwc.size(1), 3}).contiguous();
  return hwc;
}

std::string size_text(const torch::Tensor& hwc) {
  return std::to_string(hwc.size(1)) + "x" + std::to_string(hwc.size(0));
}

}  // namespace

torch::Tensor decode_image(const std::string& path, int channels) {
  GRADLENS_CHECK(channels == 1 || channels == 3, "decode_image: channels must be 1 or 3, got ",
                 channels);
  return to_channels(decode_bytes(core::read_file(path), path, channels == 1), channels);
}

ImageFolderIndex scan_image_folder(const std::string& root) {
  std::error_code ec;
  GRADLENS_CHECK(fs::is_directory(root, ec), "image folder '", root,
                 "' does not exist or is not a directory; pass a directory laid out as "
                 "<root>/<class>/<image> with --data");
  ImageFolderIndex idx;
  for (const auto& entry : fs::directory_iterator(root, fs::directory_options::follow_directory_symlink)) {
    std::error_code ec2;
    if (entry.is_directory(ec2)) idx.class_names.push_back(entry.path().filename().string());
  }
  std::sort(idx.class_names.begin(), idx.class_names.end());
  GRADLENS_CHECK(!idx.class_names.empty(), "image folder '", root,
                 "' has no class sub-folders; expected <root>/<class>/<image> (one folder per "
                 "class), e.g. as written by `gradlens make-shapes`");
  for (size_t label = 0; label < idx.class_names.size(); ++label) {
    const fs::path class_dir = fs::path(root) / idx.class_names[label];
    std::vector<std::string> masks;
    const size_t before = idx.paths.size();
    for (const auto& dir : walk_dirs(class_dir)) {
      std::vector<std::string> names;
      for (const auto& entry : fs::directory_iterator(dir, ec)) {
        std::error_code ec2;
        if (!entry.is_directory(ec2)) names.push_back(entry.path().filename().string());
      }
      std::sort(names.begin(), names.end());
      for (const auto& name : names) {
        const fs::path p = dir / name;
        if (is_mask_name(name)) {
          masks.push_back(p.string());
        } else if (is_image_name(name)) {
          idx.paths.push_back(p.string());
          idx.labels.push_back(static_cast<int64_t>(label));
        }
      }
    }
    GRADLENS_CHECK(idx.paths.size() > before, "class folder '", class_dir.string(),
                   "' contains no image files (.png .jpg .jpeg .bmp .ppm .pgm); add images to it "
                   "or remove the folder");
    std::sort(masks.begin(), masks.end());
    int64_t used = 0;
    for (size_t i = before; i < idx.paths.size(); ++i) {
      const std::string m = mask_path_for(idx.paths[i]).string();
      const bool has = std::binary_search(masks.begin(), masks.end(), m);
      idx.mask_paths.push_back(has ? m : std::string());
      used += has ? 1 : 0;
    }
    idx.orphan_masks += static_cast<int64_t>(masks.size()) - used;
  }
  return idx;
}

ImageFolderResult load_image_folder(const std::string& root, const ImageFolderOptions& opts,
                                    const core::ProgressFn& progress) {
  GRADLENS_CHECK(opts.size >= 0, "image size (--image-size) must be >= 0, got ", opts.size);
  GRADLENS_CHECK(opts.resize == 0 || (opts.size > 0 && opts.resize >= opts.size), "--resize ", opts.resize,
                 " needs --image-size (the centre crop) of at most ", opts.resize, ", got ", opts.size);
  GRADLENS_CHECK(opts.channels == 1 || opts.channels == 3, "channels must be 1 or 3, got ",
                 opts.channels);
  GRADLENS_CHECK(opts.mean.size() == opts.std.size() &&
                     (opts.mean.empty() || static_cast<int>(opts.mean.size()) == opts.channels),
                 "mean/std must both be empty or have ", opts.channels, " values, got ",
                 opts.mean.size(), "/", opts.std.size());
  const ImageFolderIndex idx = scan_image_folder(root);
  const auto n = static_cast<int64_t>(idx.paths.size());
  const uint64_t side = static_cast<uint64_t>(opts.size > 0 ? opts.size : 224);
  core::check_fits_in_memory(static_cast<uint64_t>(n) * static_cast<uint64_t>(opts.channels) * side * side,
                             "--image-size " + std::to_string(side) + ": the " + std::to_string(n) + " images of " +
                                 root + " at " + std::to_string(side) + "x" + std::to_string(side) + " px",
                             "lower --image-size or use fewer images (--train-per-class, --test-per-class)");

  bool use_masks = false;
  if (opts.load_masks) {
    const auto with = std::count_if(idx.mask_paths.begin(), idx.mask_paths.end(),
                                    [](const std::string& m) { return !m.empty(); });
    if (with > 0 && with < n) {
      const auto it = std::find(idx.mask_paths.begin(), idx.mask_paths.end(), std::string());
      const auto i = static_cast<size_t>(it - idx.mask_paths.begin());
      GRADLENS_CHECK(false, "image folder '", root, "': ", with, " of ", n,
                     " images have a .mask.png mask but ", idx.paths[i], " has none (expected ",
                     mask_path_for(idx.paths[i]).string(),
                     "); add the missing masks, remove the .mask.png files, or load without "
                     "masks");
    }
    use_masks = with == n;
  }

  std::vector<torch::Tensor> images(static_cast<size_t>(n));
  std::vector<torch::Tensor> masks(static_cast<size_t>(use_masks ? n : 0));
  std::vector<std::string> errors(static_cast<size_t>(n));
  const auto start = std::chrono::steady_clock::now();
  const int64_t chunk = 256;
  for (int64_t c0 = 0; c0 < n; c0 += chunk) {
    const int64_t c1 = std::min(n, c0 + chunk);
    at::parallel_for(c0, c1, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const auto si = static_cast<size_t>(i);
        try {
          const std::string& path = idx.paths[si];
          torch::Tensor img = decode_bytes(core::read_file(path), path, opts.channels == 1);
          torch::Tensor mask;
          if (use_masks) {
            const std::string& mp = idx.mask_paths[si];
            mask = decode_bytes(core::read_file(mp), mp, /*allow_gray=*/true);
            if (mask.size(2) == 3) mask = rgb_to_gray(mask);
            GRADLENS_CHECK(mask.size(0) == img.size(0) && mask.size(1) == img.size(1), mp,
                           ": mask is ", size_text(mask), " but its image is ", size_text(img),
                           "; masks must have their image's size");
          }
          if (opts.size > 0) {
            img = resize_center_crop(img, opts.size, /*nearest=*/false, opts.resize);
            if (use_masks) mask = resize_center_crop(mask, opts.size, /*nearest=*/true, opts.resize);
          }
          images[si] = to_channels(img, opts.channels).permute({2, 0, 1}).contiguous();
          if (use_masks) masks[si] = mask.permute({2, 0, 1}).contiguous();
        } catch (const std::exception& ex) {
          errors[si] = error_message(ex);
        }
      }
    });
    core::ProgressEvent ev;
    ev.stage = "load-images";
    ev.done = c1;
    ev.total = n;
    ev.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ev.stage_end = c1 == n;
    core::report(progress, ev);
  }

  ImageFolderResult res;
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < n; ++i) {
    const auto si = static_cast<size_t>(i);
    if (errors[si].empty()) {
      keep.push_back(i);
      continue;
    }
    GRADLENS_CHECK(opts.skip_bad_images, errors[si]);
    res.skipped_paths.push_back(idx.paths[si]);
  }
  res.skipped = static_cast<int64_t>(res.skipped_paths.size());
  GRADLENS_CHECK(!keep.empty(), "image folder '", root, "': all ", n,
                 " images were unreadable and skipped (first: ",
                 res.skipped_paths.empty() ? "" : res.skipped_paths.front(), ")");

  const torch::Tensor& first = images[static_cast<size_t>(keep.front())];
  std::vector<torch::Tensor> kept_images, kept_masks;
  Dataset& ds = res.dataset;
  std::vector<int64_t> labels;
  for (int64_t i : keep) {
    const auto si = static_cast<size_t>(i);
    GRADLENS_CHECK(images[si].sizes() == first.sizes(), idx.paths[si], " is ",
                   images[si].size(2), "x", images[si].size(1), " but ",
                   idx.paths[static_cast<size_t>(keep.front())], " is ", first.size(2), "x",
                   first.size(1), "; images of different sizes need a common size: set size / "
                   "--size");
    kept_images.push_back(images[si]);
    if (use_masks) kept_masks.push_back(masks[si]);
    labels.push_back(idx.labels[si]);
    ds.paths.push_back(idx.paths[si]);
  }
  images.clear();
  ds.images = torch::stack(kept_images);
  kept_images.clear();
  ds.labels = torch::tensor(labels, torch::kInt64);
  if (use_masks) ds.masks = torch::stack(kept_masks);
  ds.class_names = idx.class_names;
  ds.name = fs::path(root).lexically_normal().filename().string();
  if (ds.name.empty()) ds.name = fs::path(root).lexically_normal().parent_path().filename().string();
  if (!opts.mean.empty()) {
    ds.mean = opts.mean;
    ds.std = opts.std;
  } else {
    // Per-channel mean and population std of x/255, exact from a histogram
    // of the 256 byte values (no float copy of the whole dataset).
    const auto imgs = ds.images.contiguous();
    const int64_t hw = imgs.size(2) * imgs.size(3);
    const uint8_t* p = imgs.data_ptr<uint8_t>();
    for (int c = 0; c < opts.channels; ++c) {
      std::vector<int64_t> hist(256, 0);
      for (int64_t i = 0; i < imgs.size(0); ++i) {
        const uint8_t* q = p + (i * opts.channels + c) * hw;
        for (int64_t j = 0; j < hw; ++j) ++hist[q[j]];
      }
      double cnt = 0, sum = 0, sq = 0;
      for (int v = 0; v < 256; ++v) {
        const double h = static_cast<double>(hist[static_cast<size_t>(v)]);
        cnt += h;
        sum += h * (v / 255.0);
        sq += h * (v / 255.0) * (v / 255.0);
      }
      const double mean = sum / cnt;
      ds.mean.push_back(mean);
      ds.std.push_back(std::max(std::sqrt(std::max(sq / cnt - mean * mean, 0.0)), 1e-6));
    }
  }
  res.masks_loaded = use_masks ? ds.size() : 0;
  res.orphan_masks = idx.orphan_masks;
  return res;
}

}  // namespace gradlens::data
