// gradlens reads the directory of archives written by Python's zipfile
// (stored, zip64, deflated entries) as zipfile does, and its CRC-32 check
// catches a flipped byte (stored or deflated), a truncated file and a damaged
// directory.
#include "gradlens/core/zip.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "gradlens/core/check.h"
#include "support/support.h"

namespace gradlens::core {
namespace {

using test::TempDir;

/// What zipfile printed: "archive name method crc size" per entry.
std::string python_listing(const TempDir& dir) {
  const auto r = test::run_command(std::string(test::kPython) + " " +
                                   test::source_path("tests/python/zip_peer.py").string() + " " +
                                   dir.path().string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return r.out;
}

std::string our_listing(const TempDir& dir) {
  std::string out;
  for (const char* name : {"deflated.zip", "plain.zip", "zip64.zip"})
    for (const auto& e : zip_entries(dir / name))
      out += fmt::format("{} {} {} {:08x} {}\n", name, e.name, e.method, e.crc32, e.size);
  return out;
}

void flip_byte(const fs::path& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x20);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return error_message(e);
  }
  return "(no error)";
}

TEST(ZipPeer, DirectoryEqualsPythonZipfile) {
  TempDir dir;
  const std::string expected = python_listing(dir);
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(our_listing(dir), expected);
}

TEST(ZipPeer, VerifiesStoredAndDeflatedEntries) {
  TempDir dir;
  python_listing(dir);
  const auto plain = verify_zip(dir / "plain.zip", zip_entries(dir / "plain.zip"));
  EXPECT_EQ(plain.entries, 3);
  EXPECT_EQ(plain.verified, 3);
  EXPECT_EQ(plain.bytes_verified, 1000u + 0u + (3u << 20) + 12345u);
  const auto z64 = verify_zip(dir / "zip64.zip", zip_entries(dir / "zip64.zip"));
  EXPECT_EQ(z64.verified, 3);
  EXPECT_EQ(z64.bytes_verified, 5000u + 5001u + 5002u);
  const auto deflated = verify_zip(dir / "deflated.zip", zip_entries(dir / "deflated.zip"));
  EXPECT_EQ(deflated.entries, 2);
  EXPECT_EQ(deflated.verified, 2);
  EXPECT_EQ(deflated.bytes_verified, 300u + 3000u);
  EXPECT_EQ(read_zip_entry(dir / "plain.zip", zip_entries(dir / "plain.zip")[0]).size(), 1000u);
}

/// Flips the byte at `fraction` of the data of entry `index` of `archive`
/// (Python's zipfile writes no local extra field) and returns verify_zip's
/// message.
std::string damage_and_verify(const TempDir& dir, const std::string& archive, size_t index,
                              const std::string& name, double fraction) {
  const auto path = dir / archive;
  const auto entries = zip_entries(path);
  EXPECT_EQ(entries.at(index).name, name);
  const auto offset = static_cast<uint64_t>(fraction * static_cast<double>(entries[index].size));
  flip_byte(path, entries[index].header_offset + 30 + entries[index].name.size() + offset);
  return message_of([&] { verify_zip(path, zip_entries(path)); });
}

TEST(ZipPeer, AFlippedByteInAnyChunkIsNamed) {
  TempDir dir;
  python_listing(dir);
  // A byte in the third 1 MiB chunk of the large entry (3 MiB + 12345 bytes).
  const auto msg = damage_and_verify(dir, "plain.zip", 2, "archive/data/0", 0.7);
  EXPECT_NE(msg.find("plain.zip is corrupt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'archive/data/0'"), std::string::npos) << msg;
}

TEST(ZipPeer, AFlippedByteInADeflatedEntryIsNamed) {
  TempDir dir;
  python_listing(dir);
  const auto msg = damage_and_verify(dir, "deflated.zip", 1, "a/deflated", 0.5);
  EXPECT_NE(msg.find("deflated.zip is corrupt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'a/deflated'"), std::string::npos) << msg;
}

TEST(ZipPeer, TensorStoragesAreNumberedFilesInDataOrConstants) {
  const auto storage = [](const std::string& name) { return is_tensor_storage(ZipEntry{name}); };
  EXPECT_TRUE(storage("archive/data/0"));
  EXPECT_TRUE(storage("resnet50/constants/12"));
  EXPECT_TRUE(storage("data/3"));
  EXPECT_FALSE(storage("archive/data.pkl"));
  EXPECT_FALSE(storage("archive/code/__torch__.py"));
  EXPECT_FALSE(storage("archive/data/0a"));
  EXPECT_FALSE(storage("archive/data/"));
  EXPECT_FALSE(storage("archive/other/7"));
  EXPECT_FALSE(storage("archive/.data/version"));
}

TEST(ZipPeer, PartsSplitTheEntriesBetweenStructureAndStorage) {
  TempDir dir;
  python_listing(dir);
  const auto path = dir / "plain.zip";
  const auto entries = zip_entries(path);
  const auto structure = verify_zip(path, entries, ZipPart::kStructure);
  const auto storage = verify_zip(path, entries, ZipPart::kStorage, 1);
  EXPECT_EQ(structure.verified, 2);  // data.pkl and the empty entry
  EXPECT_EQ(structure.bytes_verified, 1000u);
  EXPECT_EQ(storage.verified, 1);  // data/0
  EXPECT_EQ(storage.bytes_verified, (3u << 20) + 12345u);
  // Damage in the storage is seen by kStorage alone.
  flip_byte(path, entries[2].header_offset + 30 + entries[2].name.size() + 5);
  EXPECT_NO_THROW(verify_zip(path, entries, ZipPart::kStructure));
  EXPECT_NE(message_of([&] { verify_zip(path, entries, ZipPart::kStorage); }).find("'archive/data/0'"),
            std::string::npos);
}

TEST(ZipPeer, LoadVerifiedChecksBeforeAndBesideTheLoad) {
  TempDir dir;
  python_listing(dir);
  const auto path = dir / "plain.zip";
  const auto entries = zip_entries(path);
  int loads = 0;
  const auto check = load_verified(path, entries, [&] { ++loads; });
  EXPECT_EQ(loads, 1);
  EXPECT_EQ(check.entries, 3);
  EXPECT_EQ(check.verified, 3);
  EXPECT_EQ(check.bytes_verified, 1000u + (3u << 20) + 12345u);
  // An intact archive: the load's own error comes through.
  EXPECT_EQ(message_of([&] { load_verified(path, entries, [] { GRADLENS_CHECK(false, "the load failed"); }); }),
            "the load failed");
  // Damaged storage: the corruption is reported, also over the load's error.
  flip_byte(path, entries[2].header_offset + 30 + entries[2].name.size() + (2u << 20));
  auto msg = message_of([&] { load_verified(path, entries, [&] { ++loads; }); });
  EXPECT_NE(msg.find("plain.zip is corrupt"), std::string::npos) << msg;
  msg = message_of([&] { load_verified(path, entries, [] { GRADLENS_CHECK(false, "the load failed"); }); });
  EXPECT_NE(msg.find("'archive/data/0'"), std::string::npos) << msg;
  // Damaged structure: reported before the load starts.
  flip_byte(path, entries[2].header_offset + 30 + entries[2].name.size() + (2u << 20));
  flip_byte(path, entries[0].header_offset + 30 + entries[0].name.size() + 10);
  loads = 0;
  msg = message_of([&] { load_verified(path, entries, [&] { ++loads; }); });
  EXPECT_NE(msg.find("'archive/data.pkl'"), std::string::npos) << msg;
  EXPECT_EQ(loads, 0);
}

// Found by model_file_fuzz: a directory claiming a huge uncompressed size
// made the check allocate it.
TEST(ZipPeer, AnImpossibleUncompressedSizeIsDamageNotAnAllocation) {
  TempDir dir;
  python_listing(dir);
  const auto path = dir / "deflated.zip";
  std::string bytes = read_file(path);
  // The central directory entry of "a/deflated": its uncompressed size field.
  const auto at = bytes.rfind(std::string("PK\x01\x02", 4));
  ASSERT_NE(at, std::string::npos);
  for (int k = 0; k < 4; ++k) bytes[at + 24 + k] = k == 3 ? '\x7f' : '\xff';
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  const auto msg = message_of([&] { verify_zip(path, zip_entries(path)); });
  EXPECT_NE(msg.find("claims an impossible uncompressed size"), std::string::npos) << msg;
}

TEST(ZipPeer, TruncatedAndForeignFilesAreDiagnosed) {
  TempDir dir;
  python_listing(dir);
  const std::string bytes = read_file(dir / "plain.zip");
  {
    std::ofstream(dir / "half.zip", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  EXPECT_TRUE(is_zip_file(dir / "half.zip"));
  auto msg = message_of([&] { zip_entries(dir / "half.zip"); });
  EXPECT_NE(msg.find("half.zip is not a readable zip archive (no end-of-directory record)"), std::string::npos)
      << msg;
  // The directory survives but the end of the data is gone.
  {
    std::string cut = bytes;
    const auto entries = zip_entries(dir / "plain.zip");
    cut.erase(entries[2].header_offset + 100, 1u << 20);
    std::ofstream(dir / "cut.zip", std::ios::binary) << cut;
  }
  msg = message_of([&] { verify_zip(dir / "cut.zip", zip_entries(dir / "cut.zip")); });
  EXPECT_NE(msg.find("cut.zip"), std::string::npos) << msg;
  {
    std::ofstream(dir / "text.zip", std::ios::binary) << "not an archive at all, but long enough";
  }
  EXPECT_FALSE(is_zip_file(dir / "text.zip"));
  msg = message_of([&] { zip_entries(dir / "text.zip"); });
  EXPECT_NE(msg.find("no end-of-directory record"), std::string::npos) << msg;
}

}  // namespace
}  // namespace gradlens::core
