//! Small helpers to build ONNX graphs in code for the tests.

use crate::onnx::pb::{
    AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto, attribute_type, data_type,
};

/// A graph input or output; `None` dims are symbolic (`dim_param`).
pub fn vi(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .enumerate()
        .map(|(k, d)| Dimension {
            dim_value: *d,
            dim_param: d.is_none().then(|| format!("d{k}")),
            denotation: String::new(),
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto { dim }),
            }),
            denotation: String::new(),
        }),
        doc_string: String::new(),
    }
}

/// A value info with fully known dims.
pub fn vi_fixed(name: &str, dims: &[i64]) -> ValueInfoProto {
    vi(name, &dims.iter().map(|&d| Some(d)).collect::<Vec<_>>())
}

/// A float weight with dims only: the analysis must not need its data.
pub fn weight(name: &str, dims: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: data_type::FLOAT,
        ..Default::default()
    }
}

/// An int64 tensor with data in `int64_data`; `dims` empty for a scalar.
pub fn ints_tensor(name: &str, dims: &[i64], vals: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: data_type::INT64,
        int64_data: vals.to_vec(),
        ..Default::default()
    }
}

/// An int64 1-D tensor with data in little-endian `raw_data`.
pub fn raw_ints(name: &str, vals: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![vals.len() as i64],
        data_type: data_type::INT64,
        raw_data: vals.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

pub fn a_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INTS,
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub fn a_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INT,
        i,
        ..Default::default()
    }
}

pub fn a_str(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::STRING,
        s: s.as_bytes().to_vec(),
        ..Default::default()
    }
}

pub fn a_tensor(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::TENSOR,
        t: Some(t),
        ..Default::default()
    }
}

/// A node named after its first output.
pub fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        name: outputs
            .first()
            .map(|o| format!("{o}_node"))
            .unwrap_or_default(),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

pub fn model(
    nodes: Vec<NodeProto>,
    initializer: Vec<TensorProto>,
    input: Vec<ValueInfoProto>,
    outputs: &[&str],
    opset: i64,
) -> ModelProto {
    ModelProto {
        ir_version: 8,
        producer_name: "edgebench-tests".into(),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(GraphProto {
            name: "g".into(),
            node: nodes,
            initializer,
            input,
            output: outputs.iter().map(|o| vi(o, &[])).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A sequential NCHW CNN, as edgebench's writer lays it out.
pub struct Seq {
    pub nodes: Vec<NodeProto>,
    pub inits: Vec<TensorProto>,
    cur: String,
    n: usize,
}

impl Seq {
    pub fn new(input: &str) -> Self {
        Seq {
            nodes: Vec::new(),
            inits: Vec::new(),
            cur: input.into(),
            n: 0,
        }
    }

    fn push(&mut self, op: &str, extra: &[&str], attrs: Vec<AttributeProto>) {
        self.n += 1;
        let out = format!("{}{}", op.to_lowercase(), self.n);
        let mut inputs = vec![self.cur.as_str()];
        inputs.extend(extra);
        self.nodes.push(node(op, &inputs, &[&out], attrs));
        self.cur = out;
    }

    /// "Same" conv with bias; `auto_pad` SAME_UPPER or explicit symmetric pads.
    pub fn conv(&mut self, cin: i64, filters: i64, k: i64, auto_pad: bool) -> &mut Self {
        let (w, b) = (format!("w{}", self.n + 1), format!("b{}", self.n + 1));
        self.inits.push(weight(&w, &[filters, cin, k, k]));
        self.inits.push(weight(&b, &[filters]));
        let attrs = if auto_pad {
            vec![a_str("auto_pad", "SAME_UPPER")]
        } else {
            let p = k / 2;
            vec![
                a_ints("kernel_shape", &[k, k]),
                a_ints("pads", &[p, p, p, p]),
            ]
        };
        self.push("Conv", &[&w, &b], attrs);
        self.push("Relu", &[], vec![]);
        self
    }

    pub fn pool(&mut self) -> &mut Self {
        let attrs = vec![a_ints("kernel_shape", &[2, 2]), a_ints("strides", &[2, 2])];
        self.push("MaxPool", &[], attrs);
        self
    }

    pub fn flatten(&mut self) -> &mut Self {
        self.push("Flatten", &[], vec![a_int("axis", 1)]);
        self
    }

    /// Dense as Gemm with a Keras-layout weight `[in, out]`, then softmax.
    pub fn dense_softmax(&mut self, inputs: i64, units: i64) -> &mut Self {
        let (w, b) = (format!("w{}", self.n + 1), format!("b{}", self.n + 1));
        self.inits.push(weight(&w, &[inputs, units]));
        self.inits.push(weight(&b, &[units]));
        self.push("Gemm", &[&w, &b], vec![]);
        self.push("Softmax", &[], vec![a_int("axis", -1)]);
        self
    }

    pub fn output(&self) -> &str {
        &self.cur
    }
}
