// Files imported as text (embedded into the compiled binary by `bun build --compile`).
declare module "*.sql" {
  const text: string;
  export default text;
}
declare module "*.html" {
  const text: string;
  export default text;
}
