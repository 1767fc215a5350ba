import { describe, expect, test } from 'bun:test';
import { assetFile } from '@gsil/assets';
import { loadMawpsCsv, parseMawpsCsv } from './mawps';

const TRAIN_CSV = await assetFile('mawps-fold0', 'train.csv');
const DEV_CSV = await assetFile('mawps-fold0', 'dev.csv');
const HEADER = 'Question,Numbers,Equation,Answer,group_nums,Body,Ques_Statement';

describe('MAWPS fold 0', () => {
  const train = loadMawpsCsv(TRAIN_CSV);
  const dev = loadMawpsCsv(DEV_CSV);

  test('row counts match data/README.md', () => {
    expect(train.length).toBe(1537);
    expect(dev.length).toBe(384);
  });

  test('first dev row, as in the file (line 2)', () => {
    expect(dev[0]).toEqual({
      id: 'dev-0',
      question:
        'Bryan took a look at his books as well . If Bryan has number0 books in each of his number1 bookshelves , how many books does he have in total ?',
      numbers: [56, 9],
      equation: '* number0 number1',
      answer: 504,
      line: 2,
    });
    expect(dev[383].line).toBe(385);
    expect(dev[383].equation).toBe('/ + number0 number1 number2');
  });

  test('constants in equations are kept (e.g. a percentage)', () => {
    // 15 train equations use the constant 0.01 (counted with Python's csv module).
    expect(train.filter((row) => row.equation.split(' ').includes('0.01')).length).toBe(15);
  });
});

describe('parseMawpsCsv errors name file, line and column', () => {
  const parseOne = (row: string) => parseMawpsCsv(`${HEADER}\n${row}\n`, 'bad.csv');

  test('a non-numeric Numbers entry', () => {
    expect(() => parseOne('Q number0 ?,8.0 two,+ number0 number1,10,,,')).toThrow(
      'bad.csv line 2, column Numbers: "two" in "8.0 two" is not a number',
    );
  });

  test('a missing column', () => {
    expect(() => parseMawpsCsv('Question,Numbers,Equation\nQ ?,1.0,number0\n', 'bad.csv')).toThrow(
      'bad.csv line 2, column Answer: missing',
    );
  });

  test('an equation token that is not an operator or numberN', () => {
    expect(() => parseOne('Q ?,1.0 2.0,+ number0 x,3,,,')).toThrow(
      'bad.csv line 2, column Equation: token "x" is not an operator (+ - * /), numberN or a constant',
    );
  });

  test('a reference past the Numbers, an incomplete or overlong equation, a bad Answer', () => {
    expect(() => parseOne('Q ?,1.0 2.0,+ number0 number2,3,,,')).toThrow(
      'column Equation: "number2" refers past the 2 Numbers of the row',
    );
    expect(() => parseOne('Q ?,1.0 2.0,+ number0,3,,,')).toThrow('is incomplete');
    expect(() => parseOne('Q ?,1.0 2.0,+ number0 number1 number1,3,,,')).toThrow(
      'has extra tokens from position 3',
    );
    expect(() => parseOne('Q ?,1.0 2.0,+ number0 number1,three,,,')).toThrow(
      'line 2, column Answer: "three" is not a number',
    );
  });

  test('line numbers count the header and earlier rows', () => {
    const text = `${HEADER}\nQ ?,1.0 2.0,+ number0 number1,3,,,\nQ ?,1.0,+ number0,3,,,\n`;
    expect(() => parseMawpsCsv(text, 'bad.csv')).toThrow('bad.csv line 3, column Equation');
  });
});
