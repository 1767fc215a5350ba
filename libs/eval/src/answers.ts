// When two numeric answers count as the same.

/**
 * Tolerance of answer comparisons: absolute 1e-4 for answers of magnitude up to 1,
 * relative 1e-4 above (|predicted - expected| <= 1e-4 * max(1, |expected|)). Relative
 * above 1 because MAWPS answers reach the thousands with float32-ish rounding in the data.
 */
export const ANSWER_TOLERANCE = 1e-4;

export function answersMatch(predicted: number, expected: number): boolean {
  return Math.abs(predicted - expected) <= ANSWER_TOLERANCE * Math.max(1, Math.abs(expected));
}
