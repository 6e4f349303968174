#include "gradlens/core/fs.h"

#include <fstream>

#include "gradlens/core/check.h"
#include "support/support.h"

namespace gradlens::core {
namespace {

using test::TempDir;

TEST(WriteAtomically, LeavesNoFileWhenTheWriterThrows) {
  TempDir dir;
  const auto target = dir / "out.bin";
  EXPECT_THROW(write_atomically(target,
                                [](const fs::path& tmp) {
                                  std::ofstream(tmp) << "half";
                                  throw std::runtime_error("interrupted");
                                }),
               std::runtime_error);
  EXPECT_FALSE(fs::exists(target));
  // No temporary file is left behind either.
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(WriteAtomically, ReplacesTheTargetOnSuccess) {
  TempDir dir;
  const auto target = dir / "a.txt";
  write_text_atomically(target, "one");
  write_text_atomically(target, "two");
  EXPECT_EQ(read_file(target), "two");
}

TEST(EnsureWritableDir, NamesTheFlagForAnUnwritableLocation) {
  GRADLENS_EXPECT_THROWS_WITH(ensure_writable_dir("/proc/gradlens-nope", "--out"), "--out");
}

TEST(FileCrc32, MatchesTheKnownCheckValue) {
  TempDir dir;
  // CRC-32 check value of "123456789" is 0xCBF43926.
  write_text_atomically(dir / "c", "123456789");
  EXPECT_EQ(file_crc32(dir / "c"), "cbf43926");
}

TEST(StagedDirectory, PublishesWholeOnCommitAndLeavesNothingOtherwise) {
  TempDir dir;
  const auto target = dir / "out";
  {
    StagedDirectory staged(target, "--out");
    EXPECT_EQ(staged.path().parent_path(), fs::absolute(dir.path()).lexically_normal());
    EXPECT_EQ(staged.path().filename().string().rfind(".out.partial-", 0), 0u);  // hidden
    write_text_atomically(staged.path() / "a.txt", "one");
    EXPECT_FALSE(fs::exists(target));
  }  // no commit: removed
  EXPECT_TRUE(fs::is_empty(dir.path()));
  {
    StagedDirectory staged(target, "--out");
    write_text_atomically(staged.path() / "a.txt", "one");
    staged.commit();
  }
  EXPECT_EQ(read_file(target / "a.txt"), "one");
  {
    // A later run replaces the earlier output as a whole.
    StagedDirectory staged(target, "--out");
    write_text_atomically(staged.path() / "b.txt", "two");
    staged.commit();
  }
  EXPECT_FALSE(fs::exists(target / "a.txt"));
  EXPECT_EQ(read_file(target / "b.txt"), "two");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
  GRADLENS_EXPECT_THROWS_WITH(StagedDirectory("/proc/gradlens-nope/out", "--report"), "--report");
}

TEST(ReadFile, NamesTheMissingPath) {
  GRADLENS_EXPECT_THROWS_WITH(read_file("/nonexistent/file.bin"), "/nonexistent/file.bin");
}

}  // namespace
}  // namespace gradlens::core
