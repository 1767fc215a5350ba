// Evaluation of prefix (Polish) equations as MAWPS writes them: `- number0 * number1 number2`.

const NUMBER_REFERENCE = /^number(\d+)$/;
/** A numeric constant as the data writes them (`100.0`, `0.01`, `12`). */
const CONSTANT = /^\d+(\.\d+)?$/;

/**
 * The value of a prefix equation over the operators + - * /, references numberN to
 * `numbers[N]` and non-negative numeric constants (the data has some, e.g. `100.0`).
 * Tokens are separated by whitespace. Null when the equation is empty, has an unknown
 * token or a reference past `numbers`, is incomplete, has tokens left over, divides by
 * zero, or its value is not finite.
 */
export function evaluatePrefixEquation(
  equation: string,
  numbers: readonly number[],
): number | null {
  const tokens = equation
    .trim()
    .split(/\s+/)
    .filter((token) => token !== '');
  if (tokens.length === 0) return null;
  // Right to left, prefix notation is a stack machine: operands push, operators pop two.
  const stack: number[] = [];
  for (let i = tokens.length - 1; i >= 0; i--) {
    const token = tokens[i];
    const reference = NUMBER_REFERENCE.exec(token);
    if (reference) {
      const index = Number(reference[1]);
      if (index >= numbers.length) return null;
      stack.push(numbers[index]);
    } else if (CONSTANT.test(token)) {
      stack.push(Number(token));
    } else {
      if (stack.length < 2) return null;
      const left = stack.pop()!;
      const right = stack.pop()!;
      const value = apply(token, left, right);
      if (value === null) return null;
      stack.push(value);
    }
  }
  if (stack.length !== 1 || !Number.isFinite(stack[0])) return null;
  return stack[0];
}

function apply(operator: string, left: number, right: number): number | null {
  switch (operator) {
    case '+':
      return left + right;
    case '-':
      return left - right;
    case '*':
      return left * right;
    case '/':
      return right === 0 ? null : left / right;
    default:
      return null;
  }
}
