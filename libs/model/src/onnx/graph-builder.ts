// A small helper to assemble an ONNX GraphProto node by node, keeping names unique.
import type { onnx } from 'onnx-proto';
import { onnxProto } from './onnx-proto.ts';

export type Attr = number | number[] | string | onnx.ITensorProto;

const ELEM_TYPE = {
  float: onnxProto.TensorProto.DataType.FLOAT,
  int64: onnxProto.TensorProto.DataType.INT64,
};
export type ElemType = keyof typeof ELEM_TYPE;

/** A symbolic or fixed dimension of a graph input or output. */
export type Dim = number | string;

export class GraphBuilder {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  readonly inputs: onnx.IValueInfoProto[] = [];
  readonly outputs: onnx.IValueInfoProto[] = [];
  private counter = 0;

  /** Adds a node and returns the names of its outputs (one fresh name per output). */
  op(
    opType: string,
    inputs: string[],
    attrs: Record<string, Attr> = {},
    outputCount = 1,
  ): string[] {
    const id = this.counter++;
    const outputs = Array.from({ length: outputCount }, (_, i) => `${opType}_${id}_${i}`);
    this.nodes.push({
      opType,
      name: `${opType}_${id}`,
      input: inputs,
      output: outputs,
      attribute: Object.entries(attrs).map(([name, value]) => toAttribute(name, value)),
    });
    return outputs;
  }

  /** Adds a node with one output and returns its name. */
  op1(opType: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    return this.op(opType, inputs, attrs)[0];
  }

  /**
   * Adds a node of another operator set (for example 'com.microsoft') and returns its output
   * names: `outputs[i]` false leaves optional output i unnamed (not computed).
   */
  opIn(
    domain: string,
    opType: string,
    inputs: string[],
    attrs: Record<string, Attr> = {},
    outputs: boolean[] = [true],
  ): string[] {
    const id = this.counter++;
    const names = outputs.map((wanted, i) => (wanted ? `${opType}_${id}_${i}` : ''));
    this.nodes.push({
      opType,
      domain,
      name: `${opType}_${id}`,
      input: inputs,
      output: names,
      attribute: Object.entries(attrs).map(([name, value]) => toAttribute(name, value)),
    });
    return names;
  }

  /** Adds a node writing to a fixed output name (a graph output). */
  opNamed(
    opType: string,
    inputs: string[],
    output: string,
    attrs: Record<string, Attr> = {},
  ): string {
    this.nodes.push({
      opType,
      name: `${opType}_${output}`,
      input: inputs,
      output: [output],
      attribute: Object.entries(attrs).map(([name, value]) => toAttribute(name, value)),
    });
    return output;
  }

  floatInit(name: string, dims: number[], data: Float32Array): string {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.initializers.push({ name, dims, dataType: ELEM_TYPE.float, rawData: bytes });
    return name;
  }

  int64Init(name: string, values: number[]): string {
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.initializers.push({
      name,
      dims: [values.length],
      dataType: ELEM_TYPE.int64,
      rawData: new Uint8Array(data.buffer),
    });
    return name;
  }

  /** A float scalar initializer (rank 0). */
  floatScalar(name: string, value: number): string {
    this.initializers.push({
      name,
      dims: [],
      dataType: ELEM_TYPE.float,
      rawData: new Uint8Array(Float32Array.of(value).buffer),
    });
    return name;
  }

  input(name: string, type: ElemType, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  output(name: string, type: ElemType, dims: Dim[]): void {
    this.outputs.push(valueInfo(name, type, dims));
  }
}

function valueInfo(name: string, type: ElemType, dims: Dim[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM_TYPE[type],
        shape: {
          dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  };
}

function toAttribute(name: string, value: Attr): onnx.IAttributeProto {
  const T = onnxProto.AttributeProto.AttributeType;
  if (typeof value === 'string') {
    return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  }
  if (typeof value === 'number') {
    return Number.isInteger(value)
      ? { name, type: T.INT, i: value }
      : { name, type: T.FLOAT, f: value };
  }
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  return { name, type: T.TENSOR, t: value };
}
