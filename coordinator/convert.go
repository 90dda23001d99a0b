package coordinator

import (
	tsdv1 "tsd/proto/tsd/v1"
)

// Conversions between the wire messages and the replicated records. Validation is not done here:
// the records' validate methods are the one place that decides what is well-formed.

func runFromProto(r *tsdv1.RunConfig) RunConfig {
	return RunConfig{RunID: r.GetRunId(), ConfigSHA256: r.GetConfigSha256(), ConfigJSON: r.GetConfigJson()}
}

func runToProto(r *RunConfig) *tsdv1.RunConfig {
	if r == nil {
		return nil
	}
	return &tsdv1.RunConfig{RunId: r.RunID, ConfigSha256: r.ConfigSHA256, ConfigJson: r.ConfigJSON}
}

func leaseToProto(l *LearnerLease) *tsdv1.LearnerLease {
	if l == nil {
		return nil
	}
	return &tsdv1.LearnerLease{LearnerId: l.LearnerID, Addr: l.Addr, Epoch: l.Epoch, ExpiresUnixMs: l.ExpiresUnixMs}
}

func versionFromProto(v *tsdv1.PolicyVersion) Version {
	return Version{
		Version: v.GetVersion(), Step: v.GetStep(), SHA256: v.GetSha256(), SizeBytes: v.GetSizeBytes(),
		FetchAddr: v.GetFetchAddr(), CreatedUnixMs: v.GetCreatedUnixMs(), LearnerEpoch: v.GetLearnerEpoch(),
	}
}

func versionToProto(v *Version) *tsdv1.PolicyVersion {
	if v == nil {
		return nil
	}
	return &tsdv1.PolicyVersion{
		Version: v.Version, Step: v.Step, Sha256: v.SHA256, SizeBytes: v.SizeBytes,
		FetchAddr: v.FetchAddr, CreatedUnixMs: v.CreatedUnixMs, LearnerEpoch: v.LearnerEpoch,
	}
}

func actorToProto(a Actor) *tsdv1.ActorLease {
	return &tsdv1.ActorLease{
		ActorId: a.ID, Addr: a.Addr, HeldVersion: a.HeldVersion,
		ExpiresUnixMs: a.ExpiresUnixMs, RegisteredUnixMs: a.RegisteredUnixMs,
	}
}

func clusterToProto(cs ClusterState) *tsdv1.ClusterStateResponse {
	out := &tsdv1.ClusterStateResponse{
		LeaderId: cs.LeaderID, CommitIndex: cs.CommitIndex, Run: runToProto(cs.Run),
		Learner: leaseToProto(cs.Learner), Latest: versionToProto(cs.Latest), Versions: cs.Versions,
	}
	for _, m := range cs.Members {
		out.Servers = append(out.Servers, &tsdv1.ClusterStateResponse_Server{
			NodeId: m.ID, RaftAddr: m.RaftAddr, GrpcAddr: m.GRPCAddr, Voter: m.Voter, Leader: m.Leader,
		})
	}
	for _, a := range cs.Actors {
		out.Actors = append(out.Actors, actorToProto(a))
	}
	return out
}
