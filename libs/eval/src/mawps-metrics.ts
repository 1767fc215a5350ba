// MAWPS task metrics: does the equation a model wrote give the row's answer?

import { type MawpsRow, mawpsEquationFromResponse } from '@gsil/data';
import { answersMatch } from './answers';
import { evaluatePrefixEquation } from './prefix-equation';

export interface MawpsPrediction {
  /** The decoded response (EOS removed); its first line is taken as the equation. */
  equationText: string;
  row: MawpsRow;
}

export interface MawpsExampleResult {
  id: string;
  /** The equation as extracted from the response. */
  predictedEquation: string;
  goldEquation: string;
  /** Null when the equation does not evaluate (see evaluatePrefixEquation). */
  predictedValue: number | null;
  answer: number;
  answerCorrect: boolean;
  equationMatch: boolean;
}

export interface MawpsMetrics {
  count: number;
  /** Fraction whose equation evaluates to the Answer column within ANSWER_TOLERANCE. */
  answerAccuracy: number;
  /** Fraction whose equation equals the gold one token for token. */
  equationMatch: number;
  /** Fraction whose equation does not evaluate (bad token, incomplete, extra, x/0). */
  unparsableRate: number;
  /** One result per prediction, in input order. */
  examples: MawpsExampleResult[];
}

/**
 * Scores predictions against the Answer column (not the gold equation's value: on fold 0
 * dev, 3 of 384 gold equations miss their Answer, two by rounding in the data, so the
 * ceiling is 381/384). All rates are 0 for an empty list.
 */
export function mawpsMetrics(predictions: readonly MawpsPrediction[]): MawpsMetrics {
  const examples = predictions.map(({ equationText, row }): MawpsExampleResult => {
    const predictedEquation = mawpsEquationFromResponse(equationText);
    const predictedValue = evaluatePrefixEquation(predictedEquation, row.numbers);
    return {
      id: row.id,
      predictedEquation,
      goldEquation: row.equation,
      predictedValue,
      answer: row.answer,
      answerCorrect: predictedValue !== null && answersMatch(predictedValue, row.answer),
      equationMatch: predictedEquation === mawpsEquationFromResponse(row.equation),
    };
  });
  const rate = (hit: (example: MawpsExampleResult) => boolean) =>
    examples.length === 0 ? 0 : examples.filter(hit).length / examples.length;
  return {
    count: examples.length,
    answerAccuracy: rate((example) => example.answerCorrect),
    equationMatch: rate((example) => example.equationMatch),
    unparsableRate: rate((example) => example.predictedValue === null),
    examples,
  };
}
