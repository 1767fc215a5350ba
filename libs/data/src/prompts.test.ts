import { describe, expect, test } from 'bun:test';
import type { MawpsRow } from './mawps';
import { mawpsEquationFromResponse, mawpsExample, mawpsPromptText } from './prompts';

describe('MAWPS prompt format', () => {
  test('masked question, newline, cue; the demonstration is the prefix equation', () => {
    const row: MawpsRow = {
      id: 'dev-0',
      question: 'Tom has number0 apples . How many ?',
      numbers: [3],
      equation: '+  number0 1.0',
      answer: 4,
      line: 2,
    };
    expect(mawpsExample(row)).toEqual({
      id: 'dev-0',
      promptText: 'Tom has number0 apples . How many ?\nEquation:',
      responseText: '+ number0 1.0',
    });
    expect(mawpsPromptText('Q ?')).toBe('Q ?\nEquation:');
  });

  test('the equation is the first line of a response, whitespace collapsed', () => {
    expect(mawpsEquationFromResponse(' + number0  number1\nOnce upon a time')).toBe(
      '+ number0 number1',
    );
    expect(mawpsEquationFromResponse('')).toBe('');
  });
});
