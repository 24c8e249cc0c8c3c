//! Builders of small ONNX graphs for the runtime's tests (each test file uses a subset).
#![allow(dead_code)]

use edgebench_runtime::onnx::pb;

pub fn tensor(name: &str, dims: &[i64], data: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: pb::data_type::FLOAT,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

pub fn ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_type::INTS,
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub fn int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_type::INT,
        i: v,
        ..Default::default()
    }
}

pub fn node(
    op: &str,
    inputs: &[&str],
    output: &str,
    attrs: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        name: format!("{output}_node"),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: attrs,
        ..Default::default()
    }
}

/// A float tensor value; `None` dims are the symbolic batch "N".
pub fn value(name: &str, dims: &[Option<i64>]) -> pb::ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| match d {
            Some(v) => pb::Dimension {
                dim_value: Some(*v),
                ..Default::default()
            },
            None => pb::Dimension {
                dim_param: Some("N".into()),
                ..Default::default()
            },
        })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            tensor_type: Some(pb::TypeProtoTensor {
                elem_type: pb::data_type::FLOAT,
                shape: Some(pb::TensorShapeProto { dim }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}
