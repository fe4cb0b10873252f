// The two Node globals the example uses (instead of a devDependency on @types/node).
declare const process: {
  env: Record<string, string | undefined>;
  stdout: { write(text: string): boolean };
};
