// What a model file says about its input: gradlens.json, stored among a
// TorchScript file's extra files by
//   torch.jit.save(m, path, _extra_files={"gradlens.json": json.dumps({...})})
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gradlens::models {

/// The keys of gradlens.json; all optional. Zero / empty: not given.
struct ModelMetadata {
  bool present = false;  ///< the file carries a gradlens.json
  std::string path;      ///< the model file
  std::vector<double> mean, std;  ///< per channel, in the units of input_range
  std::string input_range;        ///< "0-1" or "0-255"
  int64_t image_size = 0;         ///< centre-crop side
  int64_t resize = 0;             ///< shorter side before the crop
  int64_t channels = 0;           ///< 1 or 3
  std::vector<std::string> class_names;
  std::string layer;              ///< default layer for CAMs and activations
  int64_t output_index = -1;      ///< logits' element of a tuple output (-1: not given)
  std::string output_key;         ///< logits' key of a dict output
  int64_t class_tokens = -1;      ///< leading tokens of token layers (-1: not given)
};

/// Reads `extra/gradlens.json` from a TorchScript archive. A file that is not
/// a zip archive (a gradlens checkpoint) or has no gradlens.json gives
/// present = false. Throws c10::Error naming the file when the JSON is not
/// valid, has an unknown key, or a value of the wrong type or range
/// (mean/std of different lengths, a std <= 0, an input_range other than
/// "0-1"/"0-255", channels other than 1 or 3, resize smaller than image_size,
/// a negative output_index or class_tokens, both output_index and output_key).
ModelMetadata read_model_metadata(const std::string& path);

/// The checks and conversions of read_model_metadata() on the text of a
/// gradlens.json; `path` names the model file in messages.
ModelMetadata parse_model_metadata(const std::string& text, const std::string& path);

/// True if `path` is a TorchScript archive, told by its content (a gradlens
/// checkpoint is not, although both are zip archives).
bool is_torchscript_file(const std::string& path);

}  // namespace gradlens::models
