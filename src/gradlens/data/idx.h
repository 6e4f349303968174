// Reader for the IDX format of (Fashion-)MNIST, raw or gzip-compressed.
//
// An IDX file is a 4-byte big-endian magic number 0x0000TTDD (TT: element
// type, DD: number of dimensions), DD big-endian uint32 sizes, then the
// elements in row-major order. Only the unsigned-byte type (TT = 0x08) is
// supported, which is what (Fashion-)MNIST uses: 0x00000803 for images
// [N, H, W] and 0x00000801 for labels [N].
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>

namespace gradlens::data {

/// Magic number of an IDX file of uint8 images [N, H, W].
inline constexpr uint32_t kIdxImagesMagic = 0x00000803;
/// Magic number of an IDX file of uint8 labels [N].
inline constexpr uint32_t kIdxLabelsMagic = 0x00000801;

/// Parses an in-memory IDX file. `bytes` is the whole file, raw or gzip
/// (detected by the magic bytes 1f 8b; concatenated gzip members are
/// accepted). `name_for_errors` (usually the path) starts every error message.
/// `expected_ndim` = 0 accepts any rank in [1, 8]; otherwise the magic number
/// must be 0x000008<expected_ndim>.
///
/// Returns a contiguous CPU uint8 tensor whose shape is the header's sizes.
/// Never reads past `bytes` and allocates at most what the input can hold, so
/// it is safe on untrusted input (fuzzed by fuzz/idx_fuzz.cpp).
///
/// Throws c10::Error naming `name_for_errors` when: the header is shorter
/// than declared; the magic number is wrong (first two bytes not zero, type
/// not 0x08, rank not `expected_ndim` or not in [1, 8]); the data are
/// truncated ("expected N bytes got M"); there are trailing bytes after the
/// data; the element count overflows; or the gzip stream is corrupt.
torch::Tensor idx_parse(const std::string& bytes, const std::string& name_for_errors,
                        int expected_ndim = 0);

/// Reads and parses the IDX file `path` (raw or .gz). Throws c10::Error
/// naming the path when it cannot be read, plus everything idx_parse() throws.
torch::Tensor read_idx(const std::string& path, int expected_ndim = 0);

/// Reads an IDX image file (magic 0x00000803): uint8 [N, H, W].
torch::Tensor read_idx_images(const std::string& path);

/// Reads an IDX label file (magic 0x00000801): int64 [N].
torch::Tensor read_idx_labels(const std::string& path);

}  // namespace gradlens::data
