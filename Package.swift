// swift-tools-version:6.0
// tinymixer: a from-scratch autodiff engine, a tiny Llama, LoRA experts and the
// LoRA-Mixer router, in pure Swift with no package dependencies.

import Foundation
import PackageDescription

/// On x86-64 the numeric code is compiled for the CPU that builds it (`-target-cpu native`),
/// because without FMA and AVX every SIMD multiply-add becomes a library call per lane
/// (0.5 to 0.7 GFLOP/s instead of 40 to 80 for one core of the 2-core AMD EPYC Zen 3 in
/// lesson 02's register-blocked rung). The matmul's
/// register tile must fit the CPU's register file, so the build also tells the kernels
/// which one to use (`Sources/Kernels/MatmulKernel.swift`): AVX-512 when `/proc/cpuinfo`
/// lists avx512f, AVX2 otherwise (every x86-64 laptop since 2013; a Mac has no
/// `/proc/cpuinfo`). arm64 always uses its NEON kernel.
///
/// `TINYMIXER_TARGET` chooses instead, for a binary that must run on other machines:
/// `avx2` (`-target-cpu haswell`), `znver3` (the same AVX2 kernel compiled for AMD's Zen 3,
/// as an AMD AVX2 machine compiles it natively), `avx512` (`-target-cpu skylake-avx512`) or
/// `portable` (baseline x86-64: correct, but slow; `TINYMIXER_PORTABLE=1` means the same).
let environment = ProcessInfo.processInfo.environment
let target =
  environment["TINYMIXER_TARGET"]
  ?? (environment["TINYMIXER_PORTABLE"] != nil ? "portable" : "native")

/// The CPU's feature flags, as Linux lists them.
func cpuFlags() -> Set<Substring> {
  guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
    let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
  else { return [] }
  return Set(line.split(separator: " "))
}

#if arch(x86_64)
  let (cpuOptions, kernel): ([String], String?) =
    switch target {
    case "portable": ([], nil)
    case "avx2": (["-target-cpu", "haswell"], "TINYMIXER_AVX2")
    case "znver3": (["-target-cpu", "znver3"], "TINYMIXER_AVX2")
    case "avx512": (["-target-cpu", "skylake-avx512"], "TINYMIXER_AVX512")
    default:
      (
        ["-target-cpu", "native"],
        cpuFlags().contains("avx512f") ? "TINYMIXER_AVX512" : "TINYMIXER_AVX2"
      )
    }
#else
  let (cpuOptions, kernel): ([String], String?) = ([], nil)  // arm64: FMA in its baseline.
#endif

/// Settings shared by every target.
let common: [SwiftSetting] =
  (cpuOptions.isEmpty ? [] : [.unsafeFlags(cpuOptions)]) + (kernel.map { [.define($0)] } ?? [])

/// Kernels are optimized even in debug builds: `swift test` builds debug, and unoptimized
/// SIMD code runs 100 to 250 times slower, which would make every test that trains slow.
let alwaysOptimized: [SwiftSetting] =
  common + [.unsafeFlags(["-O"], .when(configuration: .debug))]

/// One executable target per tutorial lesson, so that `swift build` builds every lesson.
func lesson(
  _ name: String, folder: String, dependencies: [Target.Dependency], exclude: [String] = []
) -> Target {
  .executableTarget(
    name: name, dependencies: dependencies + ["Exercises"], path: "Tutorials/\(folder)",
    exclude: ["README.md"] + exclude, swiftSettings: common)
}

let package = Package(
  name: "tinymixer",
  products: [
    .executable(name: "tinymixer", targets: ["tinymixer"])
  ],
  targets: [
    .target(name: "Random", swiftSettings: common),
    .target(name: "Kernels", swiftSettings: alwaysOptimized),
    .target(name: "Autodiff", dependencies: ["Kernels", "Random"], swiftSettings: common),
    .target(
      name: "NN", dependencies: ["Autodiff", "Kernels", "Random", "SafeTensors"],
      swiftSettings: common),
    .target(name: "SafeTensors", swiftSettings: common),
    .target(name: "ToyTasks", dependencies: ["Random", "SafeTensors"], swiftSettings: common),
    .target(
      name: "Training", dependencies: ["Autodiff", "NN", "Random", "SafeTensors", "ToyTasks"],
      swiftSettings: common),
    .target(
      name: "LoRAMixer", dependencies: ["NN", "Random", "SafeTensors", "ToyTasks", "Training"],
      swiftSettings: common),
    .target(
      name: "Experiments",
      dependencies: [
        "Autodiff", "Kernels", "LoRAMixer", "NN", "SafeTensors", "ToyTasks", "Training",
      ],
      swiftSettings: common),
    .executableTarget(
      name: "tinymixer",
      dependencies: [
        "Autodiff", "Experiments", "Kernels", "LoRAMixer", "NN", "Random", "SafeTensors",
        "ToyTasks", "Training",
      ],
      swiftSettings: common),

    // The lessons' exercises: the checks every lesson's `--exercise` runs, and (a test
    // target, kept apart from the lessons) their solutions, held to those checks.
    // The lessons' pictures: a small SVG drawing each lesson draws from the real objects.
    .target(name: "Diagrams", path: "Tutorials/Diagrams", swiftSettings: common),
    .target(
      name: "Exercises",
      dependencies: [
        "Autodiff", "Experiments", "Kernels", "LoRAMixer", "NN", "Random", "SafeTensors",
      ],
      path: "Tutorials/Exercises/Checks", swiftSettings: common),
    .testTarget(
      name: "ExerciseSolutions", dependencies: ["Autodiff", "Exercises"],
      path: "Tutorials/Exercises/Solutions", swiftSettings: common),

    lesson(
      "lesson01-autodiff", folder: "01-autodiff-from-scratch",
      dependencies: ["Autodiff", "Diagrams", "Random"], exclude: ["tape.svg"]),
    lesson(
      "lesson02-fast-matmul", folder: "02-fast-matmul", dependencies: ["Diagrams", "Kernels"],
      exclude: ["register-tile.svg"]),
    lesson(
      "lesson03-tiny-transformer", folder: "03-tiny-transformer",
      dependencies: ["Autodiff", "Kernels", "NN", "Random", "ToyTasks", "Training"]),
    lesson(
      "lesson04-lora", folder: "04-lora",
      dependencies: ["Autodiff", "LoRAMixer", "NN", "Random", "ToyTasks", "Training"]),
    lesson(
      "lesson05-routing", folder: "05-routing",
      dependencies: ["Autodiff", "Diagrams", "LoRAMixer", "NN"], exclude: ["routed-site.svg"]),
    lesson(
      "lesson06-routing-specialization-loss", folder: "06-routing-specialization-loss",
      dependencies: ["Autodiff", "LoRAMixer", "NN", "Random"]),
    lesson(
      "lesson07-lora-mixer-end-to-end", folder: "07-lora-mixer-end-to-end",
      dependencies: ["Autodiff", "Diagrams", "LoRAMixer", "NN", "ToyTasks", "Training"],
      exclude: ["mixture.svg"]),
    lesson(
      "lesson08-reproducing-the-paper", folder: "08-reproducing-the-paper",
      dependencies: ["Experiments", "LoRAMixer", "ToyTasks"], exclude: ["report"]),
    lesson(
      "lesson09-files-and-other-frameworks", folder: "09-files-and-other-frameworks",
      dependencies: ["Autodiff", "LoRAMixer", "NN", "SafeTensors"]),
    lesson(
      "lesson10-selective-scan-and-mamba", folder: "10-selective-scan-and-mamba",
      dependencies: ["Autodiff", "LoRAMixer", "NN"]),

    .testTarget(name: "RandomTests", dependencies: ["Random"], swiftSettings: common),
    .testTarget(name: "KernelsTests", dependencies: ["Kernels"], swiftSettings: common),
    .testTarget(name: "AutodiffTests", dependencies: ["Autodiff"], swiftSettings: common),
    .testTarget(name: "NNTests", dependencies: ["NN"], swiftSettings: common),
    .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors"], swiftSettings: common),
    .testTarget(name: "ToyTasksTests", dependencies: ["ToyTasks"], swiftSettings: common),
    .testTarget(
      name: "TrainingTests", dependencies: ["Autodiff", "Training", "SafeTensors"],
      swiftSettings: common),
    .testTarget(
      name: "LoRAMixerTests", dependencies: ["LoRAMixer", "SafeTensors"], swiftSettings: common),
    .testTarget(
      name: "CLITests",
      dependencies: [
        "tinymixer", "lesson01-autodiff", "lesson02-fast-matmul", "lesson03-tiny-transformer",
        "lesson04-lora", "lesson05-routing", "lesson06-routing-specialization-loss",
        "lesson07-lora-mixer-end-to-end", "lesson08-reproducing-the-paper",
        "lesson09-files-and-other-frameworks", "lesson10-selective-scan-and-mamba",
      ],
      swiftSettings: common),
  ]
)
