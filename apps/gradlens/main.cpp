#include <iostream>
#include <string>
#include <vector>

#include "gradlens/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return gradlens::cli::run_cli(args, std::cout, std::cerr);
}
