import { describe, expect, test } from 'bun:test';
import { evaluatePrefixEquation } from './prefix-equation';

describe('evaluatePrefixEquation', () => {
  test('values computed by hand', () => {
    expect(evaluatePrefixEquation('* number0 number1', [56, 9])).toBe(504);
    // 25000 - 1500 * 8 (fold 0 dev line 5).
    expect(evaluatePrefixEquation('- number0 * number1 number2', [25000, 1500, 8])).toBe(13000);
    // (8 - 2) / 4: operand order is left then right.
    expect(evaluatePrefixEquation('/ - number0 number1 number2', [8, 2, 4])).toBe(1.5);
    // Constants as the data writes them: (50 + 60) / 2.0.
    expect(evaluatePrefixEquation('/ + number0 number1 2.0', [50, 60])).toBe(55);
    expect(evaluatePrefixEquation('number1', [1, 7])).toBe(7);
    expect(evaluatePrefixEquation('  +   number0\tnumber0 ', [2])).toBe(4);
  });

  test('null when unparsable, incomplete, with extra tokens, or dividing by zero', () => {
    expect(evaluatePrefixEquation('', [1])).toBeNull();
    expect(evaluatePrefixEquation('+ number0', [1])).toBeNull();
    expect(evaluatePrefixEquation('+ number0 number1 number1', [1, 2])).toBeNull();
    expect(evaluatePrefixEquation('number0 number1', [1, 2])).toBeNull();
    expect(evaluatePrefixEquation('+ number0 number2', [1, 2])).toBeNull();
    expect(evaluatePrefixEquation('^ number0 number1', [1, 2])).toBeNull();
    expect(evaluatePrefixEquation('+ number0 Once', [1])).toBeNull();
    expect(evaluatePrefixEquation('/ number0 - number1 number1', [1, 2])).toBeNull();
  });
});
