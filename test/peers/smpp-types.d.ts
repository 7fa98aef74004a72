// The npm `smpp` package ships no types (node-smpp #180); the simulator uses it untyped.
declare module "smpp";
