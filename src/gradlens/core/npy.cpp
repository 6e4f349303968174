#include "gradlens/core/npy.h"
#include <torch/types.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "gradlens/core/check.h"
#include "gradlens/core/fs.h"

namespace gradlens::core {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
constexpr int64_t kAlign = 64;
// numpy >= 1.23 leaves room for the first dimension to grow to 21 digits.
constexpr int64_t kGrowthDigits = 21;

bool little_endian_host() {
  const uint16_t one = 1;
  uint8_t b = 0;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

struct DtypeInfo {
  const char* descr;
  torch::ScalarType dtype;
  int64_t itemsize;
};

const DtypeInfo kDtypes[] = {
    {"<f4", torch::kFloat, 4}, {"<f8", torch::kDouble, 8}, {"<i8", torch::kLong, 8},
    {"<i4", torch::kInt, 4},   {"|u1", torch::kByte, 1},
};

const DtypeInfo* find_dtype(torch::ScalarType t) {
  for (const auto& d : kDtypes)
    if (d.dtype == t) return &d;
  return nullptr;
}

const DtypeInfo* find_descr(const std::string& descr) {
  for (const auto& d : kDtypes)
    if (descr == d.descr) return &d;
  // numpy also writes single-byte types with '<' on some paths.
  if (descr == "<u1") return find_descr("|u1");
  return nullptr;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

// The value text after "'key':" in a header dict, or "" if the key is absent.
size_t find_key(const std::string& dict, const std::string& key) {
  for (const char q : {'\'', '"'}) {
    const std::string k = std::string(1, q) + key + std::string(1, q);
    const size_t at = dict.find(k);
    if (at == std::string::npos) continue;
    size_t p = dict.find(':', at + k.size());
    if (p == std::string::npos) return std::string::npos;
    ++p;
    while (p < dict.size() && dict[p] == ' ') ++p;
    return p;
  }
  return std::string::npos;
}

std::string file_error_prefix(const fs::path& path) { return path.string() + ": "; }

void write_all(std::FILE* f, const void* data, size_t n, const fs::path& path) {
  if (n == 0) return;
  const size_t got = std::fwrite(data, 1, n, f);
  GRADLENS_CHECK(got == n, file_error_prefix(path), "write failed after ", got, " of ", n,
                 " bytes (disk full?)");
}

torch::Tensor to_cpu_contiguous(const torch::Tensor& t, torch::ScalarType dtype) {
  return t.to(torch::kCPU, dtype).contiguous();
}

}  // namespace

int64_t NpyHeader::numel() const {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

std::string npy_descr(torch::ScalarType dtype) {
  const DtypeInfo* d = find_dtype(dtype);
  GRADLENS_CHECK(d != nullptr, "cannot write a ", c10::toString(dtype),
                 " tensor as .npy; use float32, float64, int64, int32 or uint8");
  return d->descr;
}

std::string npy_header_dict(const std::string& descr, const std::vector<int64_t>& shape) {
  return "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape_text(shape) +
         ", }";
}

std::string npy_header(const std::string& descr, const std::vector<int64_t>& shape) {
  TORCH_INTERNAL_ASSERT(little_endian_host(), "gradlens' .npy code assumes a little-endian host");
  std::string dict = npy_header_dict(descr, shape);
  if (!shape.empty())
    dict += std::string(kGrowthDigits - static_cast<int64_t>(std::to_string(shape[0]).size()), ' ');
  // numpy's _wrap_header: pad so that magic(6)+version(2)+len(2)+dict+'\n' is
  // a multiple of 64 (a full 64 when already aligned, as numpy does).
  const int64_t hlen = static_cast<int64_t>(dict.size()) + 1;
  const int64_t pad = kAlign - ((static_cast<int64_t>(kMagicLen) + 4 + hlen) % kAlign);
  const int64_t total_len = hlen + pad;
  GRADLENS_CHECK(total_len < 65536, "array shape ", shape_text(shape),
                 " needs a .npy header longer than version 1.0 allows");
  std::string out(kMagic, kMagicLen);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(total_len & 0xff);
  out += static_cast<char>((total_len >> 8) & 0xff);
  out += dict;
  out += std::string(pad, ' ');
  out += '\n';
  return out;
}

void write_npy(const fs::path& path, const torch::Tensor& t) {
  GRADLENS_CHECK(t.defined(), "cannot write an undefined tensor to ", path.string());
  const std::string descr = npy_descr(t.scalar_type());
  const auto data = to_cpu_contiguous(t, t.scalar_type());
  const std::vector<int64_t> shape(data.sizes().begin(), data.sizes().end());
  const std::string header = npy_header(descr, shape);
  write_atomically(path, [&](const fs::path& tmp) {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    GRADLENS_CHECK(f != nullptr, "cannot write ", path.string(),
                   ": permission denied or no such directory; choose a writable location");
    try {
      write_all(f, header.data(), header.size(), path);
      write_all(f, data.data_ptr(), static_cast<size_t>(data.nbytes()), path);
    } catch (...) {
      std::fclose(f);
      throw;
    }
    GRADLENS_CHECK(std::fclose(f) == 0, "write to ", path.string(), " failed (disk full?)");
  });
}

NpyHeader read_npy_header(const fs::path& path) {
  const std::string p = file_error_prefix(path);
  std::ifstream in(path, std::ios::binary);
  GRADLENS_CHECK(in.good(), "cannot open ", path.string(), ": no such file or not readable");
  std::error_code ec;
  const auto file_size = static_cast<int64_t>(fs::file_size(path, ec));
  GRADLENS_CHECK(!ec, p, "cannot read the file size: ", ec.message());

  char pre[kMagicLen + 2];
  in.read(pre, sizeof(pre));
  GRADLENS_CHECK(in.gcount() == static_cast<std::streamsize>(sizeof(pre)) &&
                     std::memcmp(pre, kMagic, kMagicLen) == 0,
                 p, "not a .npy file (missing the \\x93NUMPY magic; file has ", file_size,
                 " bytes)");
  const int major = static_cast<unsigned char>(pre[6]);
  const int minor = static_cast<unsigned char>(pre[7]);
  GRADLENS_CHECK((major == 1 || major == 2 || major == 3) && minor == 0, p,
                 "unsupported .npy version ", major, ".", minor, " (expected 1.0, 2.0 or 3.0)");
  int64_t hlen = 0;
  int64_t len_bytes = major == 1 ? 2 : 4;
  unsigned char lb[4] = {0, 0, 0, 0};
  in.read(reinterpret_cast<char*>(lb), len_bytes);
  GRADLENS_CHECK(in.gcount() == len_bytes, p, "truncated: the header length field is cut off");
  for (int64_t i = len_bytes - 1; i >= 0; --i) hlen = (hlen << 8) | lb[i];
  const int64_t data_offset = static_cast<int64_t>(kMagicLen) + 2 + len_bytes + hlen;
  GRADLENS_CHECK(data_offset <= file_size, p, "truncated: the header claims ", hlen,
                 " bytes but the file has only ", file_size, " bytes in all");
  std::string dict(static_cast<size_t>(hlen), '\0');
  in.read(dict.data(), hlen);
  GRADLENS_CHECK(in.gcount() == hlen, p, "truncated header");

  NpyHeader h;
  h.data_offset = data_offset;
  // descr
  size_t at = find_key(dict, "descr");
  GRADLENS_CHECK(at != std::string::npos && at < dict.size() && (dict[at] == '\'' || dict[at] == '"'),
                 p, "malformed .npy header (no 'descr' string): ", dict);
  const char q = dict[at];
  const size_t end = dict.find(q, at + 1);
  GRADLENS_CHECK(end != std::string::npos, p, "malformed .npy header: ", dict);
  h.descr = dict.substr(at + 1, end - at - 1);
  // fortran_order
  at = find_key(dict, "fortran_order");
  GRADLENS_CHECK(at != std::string::npos, p, "malformed .npy header (no 'fortran_order'): ", dict);
  if (dict.compare(at, 4, "True") == 0) {
    h.fortran_order = true;
  } else {
    GRADLENS_CHECK(dict.compare(at, 5, "False") == 0, p, "malformed 'fortran_order' in header: ",
                   dict);
  }
  // shape
  at = find_key(dict, "shape");
  GRADLENS_CHECK(at != std::string::npos && at < dict.size() && dict[at] == '(', p,
                 "malformed .npy header (no 'shape' tuple): ", dict);
  const size_t close = dict.find(')', at);
  GRADLENS_CHECK(close != std::string::npos, p, "malformed 'shape' in header: ", dict);
  const std::string tuple = dict.substr(at + 1, close - at - 1);
  size_t i = 0;
  while (i < tuple.size()) {
    while (i < tuple.size() && (tuple[i] == ' ' || tuple[i] == ',')) ++i;
    if (i >= tuple.size()) break;
    size_t j = i;
    while (j < tuple.size() && tuple[j] >= '0' && tuple[j] <= '9') ++j;
    GRADLENS_CHECK(j > i, p, "malformed 'shape' in header: ", dict);
    GRADLENS_CHECK(j - i <= 15, p, "a dimension of the 'shape' in the header is absurdly large: ", dict,
                   "; the file is corrupt");
    h.shape.push_back(std::stoll(tuple.substr(i, j - i)));
    i = j;
    if (i < tuple.size() && tuple[i] == 'L') ++i;  // Python 2 longs
  }

  const DtypeInfo* d = find_descr(h.descr);
  GRADLENS_CHECK(d != nullptr, p, "unsupported dtype '", h.descr,
                 "'; gradlens reads little-endian float32 '<f4', float64 '<f8', int64 '<i8', "
                 "int32 '<i4' and uint8 '|u1' (convert with arr.astype(np.float32))");
  GRADLENS_CHECK(!h.fortran_order, p,
                 "Fortran order is not supported; save a C-ordered array "
                 "(np.save(path, np.ascontiguousarray(arr)))");
  h.dtype = d->dtype;
  h.itemsize = d->itemsize;
  int64_t expected = h.itemsize;
  for (const int64_t dim : h.shape)
    GRADLENS_CHECK(!__builtin_mul_overflow(expected, dim, &expected), p, "the shape in the header describes more "
                   "bytes than any file can hold; the file is corrupt");
  const int64_t got = file_size - data_offset;
  GRADLENS_CHECK(got >= expected, p, "truncated: expected ", expected, " bytes of data for shape ",
                 shape_text(h.shape), " ", h.descr, ", got ", got);
  GRADLENS_CHECK(got == expected, p, "has ", got - expected,
                 " bytes of trailing data after the array of shape ", shape_text(h.shape), " ",
                 h.descr, " (expected ", expected, " bytes of data); the file is corrupt");
  return h;
}

torch::Tensor read_npy(const fs::path& path) {
  const NpyHeader h = read_npy_header(path);
  auto out = torch::empty(h.shape, torch::TensorOptions().dtype(h.dtype));
  std::ifstream in(path, std::ios::binary);
  GRADLENS_CHECK(in.good(), "cannot open ", path.string());
  in.seekg(h.data_offset);
  const auto n = static_cast<std::streamsize>(out.nbytes());
  in.read(static_cast<char*>(out.data_ptr()), n);
  GRADLENS_CHECK(in.gcount() == n, file_error_prefix(path), "truncated: expected ", n,
                 " bytes of data, got ", in.gcount());
  return out;
}

torch::Tensor read_npy_matrix(const fs::path& path) {
  const NpyHeader h = read_npy_header(path);
  GRADLENS_CHECK(h.dtype == torch::kFloat || h.dtype == torch::kDouble, file_error_prefix(path),
                 "holds ", c10::toString(h.dtype), " data ('", h.descr,
                 "'), not float; a representation must be float32 or float64");
  GRADLENS_CHECK(h.shape.size() == 2, file_error_prefix(path), "is ", h.shape.size(),
                 "-D with shape ", shape_text(h.shape),
                 ", expected a 2-D [rows, features] matrix");
  return read_npy(path);
}

// ---------------------------------------------------------------------------
// NpyWriter

struct NpyWriter::Impl {
  fs::path path;
  fs::path tmp;
  torch::ScalarType dtype;
  std::string descr;
  std::vector<int64_t> trailing;
  int64_t row_numel = 1;
  int64_t rows = 0;
  int64_t header_size = 0;
  std::FILE* f = nullptr;
  bool closed = false;

  std::vector<int64_t> shape() const {
    std::vector<int64_t> s{rows};
    s.insert(s.end(), trailing.begin(), trailing.end());
    return s;
  }

  void abandon() noexcept {
    if (f) std::fclose(f);
    f = nullptr;
    std::error_code ec;
    if (!tmp.empty()) fs::remove(tmp, ec);
  }
};

NpyWriter::NpyWriter(const fs::path& path, torch::ScalarType dtype,
                     std::vector<int64_t> trailing_shape)
    : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  m.path = path;
  m.tmp = path;
  m.tmp += ".partial";
  m.dtype = dtype;
  m.descr = npy_descr(dtype);
  m.trailing = std::move(trailing_shape);
  for (auto s : m.trailing) {
    GRADLENS_CHECK(s >= 0, path.string(), ": negative dimension in the row shape ",
                   shape_text(m.trailing));
    m.row_numel *= s;
  }
  m.f = std::fopen(m.tmp.c_str(), "wb");
  GRADLENS_CHECK(m.f != nullptr, "cannot create ", m.tmp.string(), " (for ", path.string(),
                 "): ", std::strerror(errno), "; choose a writable output directory");
  const std::string header = npy_header(m.descr, m.shape());
  m.header_size = static_cast<int64_t>(header.size());
  try {
    write_all(m.f, header.data(), header.size(), m.tmp);
  } catch (...) {
    m.abandon();
    throw;
  }
}

NpyWriter::~NpyWriter() {
  if (impl_ && !impl_->closed) impl_->abandon();
}

NpyWriter::NpyWriter(NpyWriter&&) noexcept = default;
NpyWriter& NpyWriter::operator=(NpyWriter&& other) noexcept {
  if (this != &other) {
    if (impl_ && !impl_->closed) impl_->abandon();
    impl_ = std::move(other.impl_);
  }
  return *this;
}

void NpyWriter::append(const torch::Tensor& rows) {
  TORCH_INTERNAL_ASSERT(impl_, "use of a moved-from NpyWriter");
  auto& m = *impl_;
  GRADLENS_CHECK(!m.closed && m.f, m.path.string(), ": append() after close()");
  GRADLENS_CHECK(rows.defined() && rows.dim() == static_cast<int64_t>(m.trailing.size()) + 1,
                 m.path.string(), ": appended block has shape ",
                 rows.defined() ? rows.sizes() : c10::IntArrayRef{},
                 " but rows of shape ", shape_text(m.trailing), " were declared");
  for (size_t i = 0; i < m.trailing.size(); ++i)
    GRADLENS_CHECK(rows.size(static_cast<int64_t>(i) + 1) == m.trailing[i], m.path.string(),
                   ": appended block has shape ", rows.sizes(), " but rows of shape ",
                   shape_text(m.trailing), " were declared");
  const auto data = to_cpu_contiguous(rows, m.dtype);
  try {
    write_all(m.f, data.data_ptr(), static_cast<size_t>(data.nbytes()), m.tmp);
  } catch (...) {
    m.abandon();
    m.closed = true;
    throw;
  }
  m.rows += rows.size(0);
}

void NpyWriter::close() {
  TORCH_INTERNAL_ASSERT(impl_, "use of a moved-from NpyWriter");
  auto& m = *impl_;
  GRADLENS_CHECK(!m.closed && m.f, m.path.string(), ": close() called twice");
  try {
    const std::string header = npy_header(m.descr, m.shape());
    // The 21-digit growth room keeps the header size fixed.
    TORCH_INTERNAL_ASSERT(static_cast<int64_t>(header.size()) == m.header_size);
    GRADLENS_CHECK(std::fflush(m.f) == 0 && std::fseek(m.f, 0, SEEK_SET) == 0, m.tmp.string(),
                   ": cannot rewind to patch the header");
    write_all(m.f, header.data(), header.size(), m.tmp);
    const int rc = std::fclose(m.f);
    m.f = nullptr;
    GRADLENS_CHECK(rc == 0, "write to ", m.tmp.string(), " failed (disk full?)");
    std::error_code ec;
    fs::rename(m.tmp, m.path, ec);
    GRADLENS_CHECK(!ec, "cannot move ", m.tmp.string(), " to ", m.path.string(), ": ",
                   ec.message());
  } catch (...) {
    m.abandon();
    m.closed = true;
    throw;
  }
  m.closed = true;
}

int64_t NpyWriter::rows() const { return impl_ ? impl_->rows : 0; }
const fs::path& NpyWriter::path() const { return impl_->path; }
bool NpyWriter::is_open() const { return impl_ && !impl_->closed; }

}  // namespace gradlens::core
