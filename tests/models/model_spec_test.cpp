#include "gradlens/models/model_spec.h"

#include <cstdlib>

#include "gradlens/core/fs.h"
#include "support/support.h"

namespace gradlens::models {
namespace {

TEST(ModelSpec, DefaultArchitectureAndFileAreToldApartAndTheRestNamed) {
  test::TempDir dir;
  const char* old = std::getenv("GRADLENS_CACHE");
  const std::string saved = old ? old : "";
  setenv("GRADLENS_CACHE", (dir / "cache").c_str(), 1);
  const auto d = resolve_model_spec("default", "--model", false);
  EXPECT_EQ(d.kind, ModelSpec::Kind::kDefault);
  EXPECT_EQ(d.path, (dir / "cache" / "models" / "fashion-mnist-resnet18-w16.ckpt").string());
  EXPECT_EQ(default_model_path(), d.path);
  if (old) setenv("GRADLENS_CACHE", saved.c_str(), 1);
  else unsetenv("GRADLENS_CACHE");

  const auto a = resolve_model_spec("resnet50", "--models", true);
  EXPECT_EQ(a.kind, ModelSpec::Kind::kArchitecture);
  EXPECT_TRUE(a.path.empty());

  core::write_text_atomically(dir / "m.pt", "x");
  const auto f = resolve_model_spec((dir / "m.pt").string(), "--model", false);
  EXPECT_EQ(f.kind, ModelSpec::Kind::kFile);
  EXPECT_EQ(f.path, (dir / "m.pt").string());

  // Without architectures, "resnet50" is a file name like any other.
  GRADLENS_EXPECT_THROWS_WITH(resolve_model_spec("resnet50", "--model", false),
                              "--model resnet50: no such file; give a gradlens checkpoint, a TorchScript file or 'default'");
  GRADLENS_EXPECT_THROWS_WITH(resolve_model_spec("nope.pt", "--models", true),
                              "--models: 'nope.pt' is neither an existing checkpoint/TorchScript file, 'default', nor one of");
}

}  // namespace
}  // namespace gradlens::models
