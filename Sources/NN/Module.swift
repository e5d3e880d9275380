import Autodiff

/// A part of a model that holds parameters and parts of its own.
///
/// Each module names its parameters and its parts; the names join with dots into the
/// parameter paths of Hugging Face checkpoints, such as
/// `model.layers.0.self_attn.q_proj.weight`, so files map one to one onto modules.
/// Parameters are tensors that require a gradient; clearing that freezes them.
open class Module {
  /// A module; subclasses declare their parameters and parts by overriding the properties
  /// below.
  public init() {}

  /// The parameters this module holds directly, by name (`weight` for a Linear).
  open var ownParameters: [(name: String, tensor: Tensor)] { [] }

  /// The modules inside this one, by name: its `@Child` properties in the order they are
  /// declared (a subclass whose parts are not known until it is built overrides this).
  open var children: [(name: String, module: Module)] {
    var mirrors = [Mirror(reflecting: self)]
    while let parent = mirrors.last!.superclassMirror { mirrors.append(parent) }
    return mirrors.reversed().flatMap { mirror in
      mirror.children.flatMap { ($0.value as? NamedParts)?.namedParts ?? [] }
    }
  }

  /// Every parameter in this module and below, with its dotted path, in a fixed order.
  public final func namedParameters() -> [(name: String, tensor: Tensor)] {
    var result = ownParameters
    for (name, child) in children {
      result += child.namedParameters().map { ("\(name).\($0.name)", $0.tensor) }
    }
    return result
  }

  /// This module and every module below it, with dotted paths (this one's is "").
  public final func namedModules() -> [(path: String, module: Module)] {
    var result: [(String, Module)] = [("", self)]
    for (name, child) in children {
      result += child.namedModules().map {
        ($0.path.isEmpty ? name : "\(name).\($0.path)", $0.module)
      }
    }
    return result
  }

  /// The parameter at a dotted path, if there is one.
  public final func parameter(named path: String) -> Tensor? {
    namedParameters().first { $0.name == path }?.tensor
  }

  /// The parameters that currently receive gradients.
  public final func trainableParameters() -> [(name: String, tensor: Tensor)] {
    namedParameters().filter { $0.tensor.requiresGradient }
  }

  /// Marks every parameter below this module as trainable or frozen.
  public final func setTrainable(_ trainable: Bool) {
    for (_, tensor) in namedParameters() { tensor.requiresGradient = trainable }
  }

  /// The number of scalars in all parameters.
  public final var parameterCount: Int { namedParameters().reduce(0) { $0 + $1.tensor.count } }
}

/// A module applied to a tensor (`layer(x)`).
public protocol Layer: Module {
  /// The module's output for `input`.
  func callAsFunction(_ input: Tensor) -> Tensor
}

/// A part of a module, declared with its name in checkpoints, so the name is written once:
///
///     @Child("q_proj") public private(set) var query: Linear
///
/// A list of parts is named `name.0`, `name.1`, …; an optional part that is nil is left
/// out. The module's initializer sets the part after `super.init()`.
@propertyWrapper
public struct Child<Part> {
  /// The part's name in parameter paths.
  public let name: String
  private var part: Part?

  /// A part named `name`, set later by the module's initializer.
  public init(_ name: String) { self.name = name }

  /// The part.
  public var wrappedValue: Part {
    get { part! }
    set { part = newValue }
  }
}

/// What `Module.children` reads from a `Child`.
protocol NamedParts {
  var namedParts: [(name: String, module: Module)] { get }
}

extension Child: NamedParts {
  var namedParts: [(name: String, module: Module)] {
    switch part as Any {
    case let parts as [Module]: parts.enumerated().map { ("\(name).\($0.offset)", $0.element) }
    case let part as Module: [(name, part)]
    default: []
    }
  }
}
