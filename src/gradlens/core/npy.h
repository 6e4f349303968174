// NumPy's .npy format (version 1.0): whole-tensor write and read, and a
// streaming writer that appends row blocks and patches the row count at close.
//
// Files are C order, little-endian, with numpy's header layout: the header
// dict is padded with spaces (plus numpy's 21-digit growth room for the first
// dimension) so that the data starts at a multiple of 64 bytes; a tensor
// written here is byte-identical to numpy 1.24's np.save of the same array.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace gradlens::core {

/// The header of a .npy file, as parsed by read_npy_header().
struct NpyHeader {
  std::string descr;             ///< numpy dtype string, e.g. "<f4"
  bool fortran_order = false;
  std::vector<int64_t> shape;    ///< empty for a 0-d array
  int64_t data_offset = 0;       ///< bytes before the data (a multiple of 64 for our files)
  torch::ScalarType dtype = torch::kFloat;  ///< the tensor dtype of `descr`
  int64_t itemsize = 0;
  int64_t numel() const;
};

/// numpy's descr for a tensor dtype: float32 "<f4", float64 "<f8", int64
/// "<i8", int32 "<i4", uint8 "|u1". Throws c10::Error for any other dtype.
std::string npy_descr(torch::ScalarType dtype);

/// The header dict text numpy writes for `descr` and `shape` (without the
/// magic, the length field and the padding), e.g.
/// "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }".
std::string npy_header_dict(const std::string& descr, const std::vector<int64_t>& shape);

/// The complete header (magic, version 1.0, length, dict, padding, '\n') as
/// numpy 1.24 writes it; its size is a multiple of 64.
std::string npy_header(const std::string& descr, const std::vector<int64_t>& shape);

/// Writes `t` (float32, float64, int64, int32 or uint8; any device, any
/// strides) to `path` atomically (core::write_atomically). A 0-d tensor is
/// written with shape (). Throws c10::Error naming the path for an
/// unsupported dtype or an unwritable location.
void write_npy(const std::filesystem::path& path, const torch::Tensor& t);

/// Parses and validates the header of `path`: magic "\x93NUMPY", version
/// 1.0, 2.0 or 3.0, a dict with 'descr', 'fortran_order' and 'shape', a
/// supported descr ('<f4' '<f8' '<i8' '<i4' '|u1'), fortran_order False, and a
/// file size equal to data_offset + numel * itemsize. Every error names the
/// file and says what is wrong ("truncated: expected N bytes of data, got M";
/// "Fortran order is not supported"; "unsupported dtype '<U5'").
NpyHeader read_npy_header(const std::filesystem::path& path);

/// Reads a whole .npy file into a CPU tensor of its dtype and shape.
/// Throws as read_npy_header(), or when the file cannot be read.
torch::Tensor read_npy(const std::filesystem::path& path);

/// read_npy() for a representation matrix: requires a 2-D float32/float64
/// array (errors name the file: "holds int64 data, not float"; "is 1-D,
/// expected a 2-D [rows, features] matrix"). Returns it with its own dtype.
torch::Tensor read_npy_matrix(const std::filesystem::path& path);

/// Streams rows into a .npy file whose first dimension grows: construct with
/// the dtype and the trailing shape (the shape of one row), append() blocks of
/// rows [B, trailing...], close() to publish.
///
/// Data go to a temporary file "<path>.partial" next to `path`; close() patches
/// the header's first dimension (within numpy's reserved 21-digit growth room,
/// so the header size never changes), flushes and renames the file to `path`.
/// A writer destroyed without close() (an exception, an interrupted run)
/// removes its temporary file, so a partial file never appears under `path`.
/// Memory use is one block.
class NpyWriter {
 public:
  /// Throws c10::Error naming the path when the dtype is unsupported or the
  /// temporary file cannot be created (e.g. the directory is not writable).
  NpyWriter(const std::filesystem::path& path, torch::ScalarType dtype,
            std::vector<int64_t> trailing_shape);
  ~NpyWriter();
  NpyWriter(NpyWriter&&) noexcept;
  NpyWriter& operator=(NpyWriter&&) noexcept;
  NpyWriter(const NpyWriter&) = delete;
  NpyWriter& operator=(const NpyWriter&) = delete;

  /// Appends `rows` [B, trailing...] (B may be 0), converted to the writer's
  /// dtype and to CPU. Throws c10::Error naming the file when the trailing
  /// shape differs, when the writer is closed, or on a write error.
  void append(const torch::Tensor& rows);

  /// Patches the row count, flushes and renames the file to its final path.
  /// Throws c10::Error naming the file on an I/O error (the temporary file is
  /// then removed). Calling close() twice is an error.
  void close();

  int64_t rows() const;
  const std::filesystem::path& path() const;
  bool is_open() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gradlens::core
